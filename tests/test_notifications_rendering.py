"""The French letters: every kind renders, formats money and dates the French way, refuses a
missing variable, escapes HTML, and carries a hash of the exact templates it came from."""
from __future__ import annotations

import copy
import hashlib
import shutil
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from notifications import rendering  # noqa: E402
from notifications.rendering import (  # noqa: E402
    KINDS,
    NotificationRenderer,
    RenderedMessage,
    TemplateContextError,
    TemplateValueError,
    UnknownNotificationKind,
    date_fr,
    datetime_fr,
    document_label,
    euros,
    render,
    state_label,
    template_hash,
)
from rules.french import euros  # noqa: E402

NBSP = "\u00a0"

DOSSIER = {
    "reference": "OCC-2021-0042",
    "programme_id": "occitanie-prif",
    "programme_name": "Parcours régional Industrie du Futur",
    "region": "Occitanie",
    "company_name": "Mécanique Précise du Lauragais",
    "siren": "732829320",
    "state": "submitted",
    "example": False,
}
APPLICANT = {"role": "applicant", "name": "Claire Dupont", "email": "claire.dupont@example.fr"}

SAMPLES: dict[str, dict] = {
    "message_received": {"sender": "l'entreprise", "attachments": 2, "sent_at": "2021-03-02T10:15:00+01:00"},
    "expert_invitation": {"link": "https://usine.example/ui/avis/abc", "expires_at": "2021-03-17T10:15:00+01:00",
                          "invited_by": "Julien Martin"},
    "candidacy_received": {"submitted_at": "2021-02-01T10:00:00+01:00"},
    "documents_requested": {
        "kinds": ["kbis", "tax_certificate"], "requested_on": "2021-03-01", "lapse_on": "2021-03-31",
    },
    "documents_reminder": {
        "kinds": ["kbis"], "requested_on": "2021-03-01", "lapse_on": "2021-03-31", "step_day": 7,
    },
    "documents_final_notice": {
        "kinds": ["kbis", "rib"], "requested_on": "2021-03-01", "lapse_on": "2021-03-31",
    },
    "eligibility_decision": {
        "decision": "eligible", "reason": None, "consultant": "Conseil Industrie Sud",
        "phase1": {"days": 5, "day_rate": "1100.00", "eligible_expense": "5500.00"},
    },
    "vote_result": {
        "outcome": "approved", "session": "CP-2021-04", "session_date": "2021-04-09",
        "deliberation": "CP/21-04/07.12",
        "aid": {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"},
        "convention_required": False, "loans": [],
    },
    "payment_issued": {
        "phase": 2, "payment_kind": "final", "amount": "2400.00", "paid_total": "16300.00",
        "recovery_amount": None, "line_label": None,
        "excluded_lines": [{"date": "2023-01-02", "amount": "1200.00",
                            "reason": "dépense postérieure à la date limite d'éligibilité"}],
    },
    "loan_disbursed": {
        "loan": {"kind": "subsidised_loan", "principal": "400000.00", "annual_rate": "0.0203", "deferral_months": 12,
                 "instalments": 20, "disbursed_on": "2020-07-15", "phase": 3},
        "principal": "400000.00", "disbursed_on": "2020-07-15",
        "schedule": [{"number": 1, "date": "2020-10-15", "principal": "0.00", "interest": "2030.00",
                      "amount": "2030.00", "outstanding_after": "400000.00"},
                     {"number": 5, "date": "2021-10-15", "principal": "20000.00", "interest": "2030.00",
                      "amount": "22030.00", "outstanding_after": "380000.00"}],
    },
    "repayment_due": {
        "instalment": {"number": 6, "date": "2022-01-15", "principal": "20000.00", "interest": "1928.50",
                       "amount": "21928.50", "outstanding_after": "360000.00"},
        "due_on": "2022-01-15", "outstanding": "380000.00",
    },
    "repayment_reminder": {"instalment": {"number": 2, "date": "2022-09-01"}, "due_on": "2022-09-01",
                           "unpaid": "6250.00"},
    "default_notice": {"instalment": {"number": 2, "date": "2022-09-01"}, "due_on": "2022-09-01",
                       "unpaid": "6250.00", "outstanding": "93750.00"},
    "dossier_lapsed": {"reason": "pièces manquantes non transmises dans le délai", "lapsed_on": "2021-03-31"},
    "dossier_closed": {
        "aid_total": "17500.00", "paid_total": "16300.00", "cancelled_remainder": "1200.00",
        "closed_on": "2023-03-15",
    },
    "daily_digest": {
        "officer_name": "Julien Martin", "for_date": "2021-03-08",
        "items": [
            {"reference": "OCC-2021-0042", "company_name": "Mécanique Précise du Lauragais",
             "state": "eligibility_review", "deadline": "2021-03-31", "what": "pièces demandées non reçues"},
            {"reference": "OCC-2021-0051", "company_name": "Plasturgie d'Albi",
             "state": "ready_for_vote", "deadline": "2021-03-10", "what": "clôture de l'ordre du jour"},
        ],
    },
    "window_opening": {
        "programme": {"id": "pdl-ami-idf", "name": "AMI Industrie du futur", "region": "Pays de la Loire"},
        "window": {"opens_on": "2024-02-01", "closes_on": "2024-03-29", "label": "AMI 2024 — 1re session"},
        "company": {"name": "Mécanique Précise du Lauragais", "siren": "732829320"},
        "drafts": [],
    },
    "window_closing": {
        "programme": {"id": "pdl-ami-idf", "name": "AMI Industrie du futur", "region": "Pays de la Loire"},
        "window": {"opens_on": "2024-02-01", "closes_on": "2024-03-29", "label": "AMI 2024 — 1re session"},
        "company": {"name": "Mécanique Précise du Lauragais", "siren": "732829320"},
        "drafts": ["PDL-2024-000042"],
    },
    "agenda_closing": {
        "programme": {"id": "occitanie-prif", "name": "Parcours régional Industrie du Futur", "region": "Occitanie"},
        "session": {"code": "CP-2021-04", "session_date": "2021-04-08", "agenda_closes_on": "2021-04-01"},
        "officer_name": "Julien Martin",
        "items": [
            {"reference": "OCC-2021-0042", "company_name": "Mécanique Précise du Lauragais",
             "what": "plan d'action déposé : à proposer au vote"},
        ],
    },
}

# Kinds whose letter concerns no single dossier (they carry no `dossier` in their context).
DOSSIERLESS = {"daily_digest", "window_opening", "window_closing", "agenda_closing"}


def context_for(kind: str, **overrides) -> dict:
    """A full sample context of the contract for one kind (deep copy, safe to mutate)."""
    context = copy.deepcopy(SAMPLES[kind])
    if kind in ("daily_digest", "agenda_closing"):
        context["recipient"] = {"role": "officer", "name": "Julien Martin", "email": "j.martin@region.example"}
    elif kind in DOSSIERLESS:
        context["recipient"] = {"role": "applicant", "name": "Mécanique Précise du Lauragais",
                                "email": "contact@mpl.example"}
    else:
        context["dossier"] = copy.deepcopy(DOSSIER)
        context["recipient"] = copy.deepcopy(APPLICANT)
    context.update(overrides)
    return context


# --------------------------------------------------------------------------- every kind


def test_the_sample_contexts_cover_every_kind():
    assert set(SAMPLES) == set(KINDS)


def test_every_kind_has_exactly_its_three_templates_on_disk():
    folder = rendering.TEMPLATES_DIR
    kind_folders = {path.name for path in folder.iterdir() if path.is_dir()}
    assert kind_folders == set(KINDS)
    for kind in KINDS:
        assert sorted(p.name for p in (folder / kind).iterdir()) == sorted(rendering.KIND_TEMPLATE_FILES)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_subject_a_text_and_an_html_body(kind):
    message = render(kind, context_for(kind))
    assert isinstance(message, RenderedMessage)
    assert message.kind == kind
    assert message.subject and "\n" not in message.subject
    assert message.text.strip() and message.html.strip()
    assert message.html.lstrip().startswith("<!DOCTYPE html>")
    assert '<html lang="fr">' in message.html
    assert message.template_hash == template_hash(kind)
    # A null or a Python repr never leaks into a letter.
    for body in (message.subject, message.text, message.html):
        assert "None" not in body and "Undefined" not in body


def test_the_kinds_without_a_dossier_are_declared_as_such():
    assert rendering.DOSSIERLESS_KINDS == DOSSIERLESS


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind not in DOSSIERLESS])
def test_a_letter_about_a_dossier_names_it_and_is_signed_by_the_regional_service(kind):
    message = render(kind, context_for(kind))
    assert DOSSIER["reference"] in message.subject
    for body in (message.text, message.html):
        assert "Madame, Monsieur," in body
        assert "Le service Industrie du Futur — Région Occitanie" in body
        assert "Parcours régional Industrie du Futur" in body
        assert "732" + NBSP + "829" + NBSP + "320" in body  # SIREN, grouped


def test_the_daily_digest_lists_each_dossier_for_its_officer():
    message = render("daily_digest", context_for("daily_digest"))
    assert message.subject == "Vos échéances du 8 mars 2021 : 2 dossiers"
    assert "Bonjour Julien Martin," in message.text
    assert "OCC-2021-0051 — Plasturgie d'Albi (proposé au vote) : échéance le 10 mars 2021" in message.text
    assert "<th scope=\"row\">OCC-2021-0042</th>" in message.html


def test_a_window_opening_notice_gives_the_closing_day_and_lists_drafts_only_when_there_are_some():
    message = render("window_opening", context_for("window_opening"))
    assert message.subject == "AMI Industrie du futur — Appel à manifestation d'intérêt ouvert jusqu'au 29 mars 2024"
    assert "ouvre l'appel « AMI 2024 — 1re session » du programme « AMI Industrie du futur » le 1er février 2024" in message.text
    assert "jusqu'au 29 mars 2024 inclus" in message.text
    assert "brouillon" not in message.text
    assert "Le service Industrie du Futur — Région Pays de la Loire" in message.text
    with_draft = render("window_opening", context_for("window_opening", drafts=["PDL-2024-000042"]))
    assert "Votre candidature suivante est enregistrée en brouillon" in with_draft.text
    assert "<li>PDL-2024-000042</li>" in with_draft.html


def test_a_window_closing_notice_names_the_drafts_still_to_submit():
    message = render("window_closing", context_for("window_closing"))
    assert "Clôture de l'appel le 29 mars 2024" in message.subject
    assert "  - PDL-2024-000042" in message.text
    assert "au plus tard le 29 mars 2024" in message.text
    plural = render("window_closing", context_for("window_closing", drafts=["PDL-2024-000042", "PDL-2024-000043"]))
    assert "Vos candidatures suivantes sont encore à l'état de brouillon" in plural.text


def test_the_agenda_reminder_tells_the_officer_which_dossiers_to_propose_before_the_closing_day():
    message = render("agenda_closing", context_for("agenda_closing"))
    assert message.subject == ("Séance CP-2021-04 du 8 avril 2021 : ordre du jour clos le 1er avril 2021 — "
                               "1 dossier en plan d'action")
    assert "Bonjour Julien Martin," in message.text
    assert "  - OCC-2021-0042 — Mécanique Précise du Lauragais : plan d'action déposé : à proposer au vote" in message.text
    assert '<th scope="row">OCC-2021-0042</th>' in message.html


def test_an_empty_daily_digest_says_there_is_nothing_to_do():
    message = render("daily_digest", context_for("daily_digest", items=[]))
    assert message.subject == "Vos échéances du 8 mars 2021 : 0 dossier"
    assert "Aucun de vos dossiers" in message.text


def test_the_acknowledgement_gives_the_paris_time_of_submission_and_the_silence_rule():
    message = render("candidacy_received", context_for("candidacy_received",
                                                       submitted_at="2021-02-01T09:00:00+00:00"))
    assert f"déposée le 1er février 2021 à 10{NBSP}h{NBSP}00" in message.text
    assert "L. 231-4" in message.text


def test_a_document_request_lists_the_documents_in_french_and_gives_the_lapse_date():
    message = render("documents_requested", context_for("documents_requested"))
    assert "  - extrait Kbis de moins de 3 mois" in message.text
    assert "  - attestation de régularité fiscale" in message.text
    assert "avant le 31 mars 2021" in message.text
    assert "classé sans suite le 31 mars 2021" in message.text
    assert "caduc" in message.text
    assert "<li>extrait Kbis de moins de 3 mois</li>" in message.html


@pytest.mark.parametrize("step_day, wording", [(7, "Première relance"), (14, "Deuxième relance")])
def test_reminders_say_which_reminder_they_are(step_day, wording):
    message = render("documents_reminder", context_for("documents_reminder", step_day=step_day))
    assert wording in message.text and wording in message.html
    assert "la pièce suivante ne nous est pas encore parvenue" in message.text  # one kind: singular


def test_the_final_notice_warns_of_the_lapse_date():
    message = render("documents_final_notice", context_for("documents_final_notice"))
    assert "le 31 mars 2021" in message.subject
    assert "caduc" in message.text


def test_an_eligibility_decision_with_nulls_renders_without_them():
    ineligible = context_for("eligibility_decision", decision="ineligible", consultant=None, phase1=None,
                             reason="Établissement situé hors de la région Occitanie.")
    message = render("eligibility_decision", ineligible)
    assert message.subject.endswith("Candidature non retenue")
    assert "Établissement situé hors de la région Occitanie." in message.text
    assert "Voies et délais de recours" in message.text and "Voies et délais de recours" in message.html

    no_reason = render("eligibility_decision", dict(ineligible, reason=None))
    assert "n'a pas pu être retenue." in no_reason.text


def test_an_eligible_decision_states_the_phase_one_terms():
    message = render("eligibility_decision", context_for("eligibility_decision"))
    assert "prestataire référencé Conseil Industrie Sud" in message.text
    assert "durée : 5 jours" in message.text
    assert f"1{NBSP}100,00{NBSP}€ HT" in message.text
    assert f"5{NBSP}500,00{NBSP}€ HT" in message.text


def test_an_unknown_decision_is_refused_rather_than_rendered():
    with pytest.raises(TemplateValueError, match="decision"):
        render("eligibility_decision", context_for("eligibility_decision", decision="maybe"))


# --------------------------------------------------------------------------- vote result


def test_the_vote_result_mentions_the_deliberation_and_the_amounts():
    message = render("vote_result", context_for("vote_result"))
    for body in (message.text, message.html):
        assert "CP/21-04/07.12" in body
        assert "9 avril 2021" in body
        assert f"17{NBSP}500,00{NBSP}€" in body
        assert f"12{NBSP}000,00{NBSP}€" in body


def test_the_vote_result_mentions_the_convention_only_when_required():
    without = render("vote_result", context_for("vote_result"))
    assert "2000-321" not in without.text and "2000-321" not in without.html

    big_aid = {"phase1": "9600.00", "phase2": "15000.00", "total": "24600.00"}
    with_convention = render("vote_result", context_for("vote_result", aid=big_aid, convention_required=True))
    for body in (with_convention.text, with_convention.html):
        assert "loi n° 2000-321 du 12 avril 2000" in body
        assert "article 10" in body
        assert "convention" in body


def test_a_rejected_vote_without_aid_gives_the_means_of_appeal():
    message = render("vote_result", context_for("vote_result", outcome="rejected", aid=None))
    assert "n'a pas retenu" in message.text
    assert "Voies et délais de recours" in message.text


def test_an_adjourned_vote_without_deliberation_leaves_the_number_out():
    message = render("vote_result", context_for("vote_result", outcome="adjourned", aid=None, deliberation=None))
    assert "ajourné" in message.text
    assert "délibération" not in message.text


def test_an_approval_without_amounts_is_refused():
    with pytest.raises(TemplateValueError, match="aid"):
        render("vote_result", context_for("vote_result", aid=None))


# --------------------------------------------------------------------------- payments, closure


def test_a_payment_letter_lists_the_excluded_invoice_lines_with_their_reason():
    message = render("payment_issued", context_for("payment_issued"))
    assert message.subject.endswith("Versement du solde de la phase 2")
    assert f"versement de 2{NBSP}400,00{NBSP}€ au titre du solde de la phase 2" in message.text
    assert f"dépense du 2 janvier 2023, 1{NBSP}200,00{NBSP}€ HT : dépense postérieure" in message.text
    assert "titre de recettes" not in message.text


def test_a_payment_letter_announces_a_recovery_order_when_there_is_one():
    message = render("payment_issued", context_for("payment_issued", amount="0.00", recovery_amount="600.00",
                                                   excluded_lines=[]))
    assert "aucun versement complémentaire" in message.text
    assert f"ordre de reversement) d'un montant de 600,00{NBSP}€" in message.text
    assert "non retenue" not in message.text


def test_a_phase_one_payment_is_not_called_a_balance():
    message = render("payment_issued", context_for("payment_issued", phase=1, excluded_lines=[]))
    assert message.subject.endswith("Versement de l'aide de la phase 1")
    assert "solde" not in message.text


def test_a_closure_letter_states_the_cancelled_remainder_only_when_there_is_one():
    message = render("dossier_closed", context_for("dossier_closed"))
    assert "est annulée" in message.text
    nothing_left = render("dossier_closed", context_for("dossier_closed", cancelled_remainder="0.00",
                                                        paid_total="17500.00"))
    assert "est annulée" not in nothing_left.text


# --------------------------------------------------------------------------- missing variables


def test_a_missing_top_level_variable_raises_an_error_naming_it():
    context = context_for("documents_requested")
    del context["lapse_on"]
    with pytest.raises(TemplateContextError) as caught:
        render("documents_requested", context)
    assert caught.value.kind == "documents_requested"
    assert caught.value.missing_name == "lapse_on"
    assert "lapse_on" in str(caught.value)


def test_a_missing_nested_variable_is_named_by_its_dotted_path():
    context = context_for("vote_result")
    del context["dossier"]["reference"]
    with pytest.raises(TemplateContextError) as caught:
        render("vote_result", context)
    assert caught.value.missing_name == "dossier.reference"


def test_a_missing_key_inside_a_list_item_is_named_with_its_index():
    context = context_for("daily_digest")
    del context["items"][1]["deadline"]
    with pytest.raises(TemplateContextError) as caught:
        render("daily_digest", context)
    assert caught.value.missing_name == "items[1].deadline"


def test_a_missing_flag_is_an_error_not_false():
    context = context_for("vote_result")
    del context["convention_required"]
    with pytest.raises(TemplateContextError) as caught:
        render("vote_result", context)
    assert caught.value.missing_name == "convention_required"


def test_an_unknown_kind_is_refused():
    with pytest.raises(UnknownNotificationKind):
        render("birthday_greetings", {})
    with pytest.raises(UnknownNotificationKind):
        template_hash("../vote_result")


def test_an_unknown_document_kind_is_an_error_not_a_raw_id():
    with pytest.raises(TemplateValueError, match="passport"):
        render("documents_requested", context_for("documents_requested", kinds=["passport"]))


# --------------------------------------------------------------------------- html


def test_html_escapes_a_company_name_but_the_text_keeps_it_as_typed():
    context = context_for("candidacy_received")
    context["dossier"]["company_name"] = "<script>alert('x')</script> & Fils"
    message = render("candidacy_received", context)
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "&amp; Fils" in message.html
    assert "<script>alert('x')</script> & Fils" in message.text


def test_a_newline_in_a_value_cannot_break_the_subject_onto_two_lines():
    context = context_for("dossier_closed")
    context["dossier"]["reference"] = "OCC-1\nBcc: someone@example.com"
    message = render("dossier_closed", context)
    assert "\n" not in message.subject


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("value, expected", [
    ("17500.00", f"17{NBSP}500,00{NBSP}€"),
    (Decimal("17500"), f"17{NBSP}500,00{NBSP}€"),
    ("5500", f"5{NBSP}500,00{NBSP}€"),
    ("999.99", f"999,99{NBSP}€"),
    ("1234567.8", f"1{NBSP}234{NBSP}567,80{NBSP}€"),
    ("0.005", f"0,01{NBSP}€"),
    ("0.004", f"0,00{NBSP}€"),
    ("2.675", f"2,68{NBSP}€"),  # 2.675 as a float is 2.67499…: Decimal keeps the half-up cent
    ("-1200.5", f"-1{NBSP}200,50{NBSP}€"),
    ("-0.001", f"0,00{NBSP}€"),
    (0, f"0,00{NBSP}€"),
])
def test_amounts_are_written_the_french_way(value, expected):
    assert euros(value) == expected


@pytest.mark.parametrize("value", [17500.0, True, None, "dix euros", "NaN"])
def test_amounts_that_are_not_decimal_are_refused(value):
    with pytest.raises((TypeError, ValueError)):
        euros(value)


@pytest.mark.parametrize("value, expected", [
    ("2021-04-09", "9 avril 2021"),
    ("2021-03-01", "1er mars 2021"),
    (date(2021, 8, 15), "15 août 2021"),
    (date(2022, 12, 31), "31 décembre 2022"),
    ("2021-02-01T10:00:00+01:00", "1er février 2021"),
    # 23:30 UTC on 28 February is already 1 March in Paris.
    (datetime(2021, 2, 28, 23, 30, tzinfo=timezone.utc), "1er mars 2021"),
    ("2021-06-30T22:30:00Z", "1er juillet 2021"),  # summer time: UTC+2
])
def test_dates_are_written_the_french_way_on_the_paris_calendar(value, expected):
    assert date_fr(value) == expected


def test_an_instant_without_offset_is_refused_rather_than_guessed():
    with pytest.raises(ValueError):
        date_fr("2021-02-28T23:30:00")
    with pytest.raises(ValueError):
        datetime_fr(datetime(2021, 2, 28, 23, 30))


def test_times_are_written_the_french_way_in_paris_time():
    assert datetime_fr("2021-07-14T08:05:00+00:00") == f"14 juillet 2021 à 10{NBSP}h{NBSP}05"


def test_document_and_state_labels_are_french():
    assert document_label("kbis") == "extrait Kbis de moins de 3 mois"
    assert document_label("social_certificate") == "attestation de régularité sociale (URSSAF)"
    assert state_label("lapsed") == "caduc"
    assert state_label("ready_for_vote") == "proposé au vote"
    with pytest.raises(ValueError):
        state_label("limbo")


# --------------------------------------------------------------------------- template hash


def _copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(rendering.TEMPLATES_DIR, target)
    return target


def test_the_template_hash_is_the_sha256_of_the_template_files_in_order():
    renderer = rendering.default_renderer()
    files = renderer.template_files("vote_result")
    assert [f.name for f in files[:3]] == ["subject.txt.j2", "body.txt.j2", "body.html.j2"]
    assert {f.name for f in files[3:]} == {"_base.html.j2", "_base.txt.j2", "_portal_link.html.j2", "_portal_link.txt.j2",
                                           "_recours.html.j2", "_recours.txt.j2"}
    expected = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert template_hash("vote_result") == expected


def test_the_template_hash_is_stable_for_the_same_templates(tmp_path):
    copy_renderer = NotificationRenderer(_copy_templates(tmp_path))
    for kind in KINDS:
        assert copy_renderer.template_hash(kind) == template_hash(kind)
        assert render(kind, context_for(kind)).template_hash == template_hash(kind)
    assert len({template_hash(kind) for kind in KINDS}) == len(KINDS)


def test_the_template_hash_changes_when_a_kinds_template_changes(tmp_path):
    folder = _copy_templates(tmp_path)
    body = folder / "vote_result" / "body.txt.j2"
    body.write_bytes(body.read_bytes().replace("Nous avons le plaisir".encode(), "Nous sommes heureux".encode()))
    edited = NotificationRenderer(folder)
    assert edited.template_hash("vote_result") != template_hash("vote_result")
    assert edited.template_hash("dossier_closed") == template_hash("dossier_closed")
    message = edited.render("vote_result", context_for("vote_result"))
    assert "Nous sommes heureux" in message.text
    assert message.template_hash == edited.template_hash("vote_result")


def test_the_template_hash_changes_for_every_kind_when_the_shared_base_changes(tmp_path):
    folder = _copy_templates(tmp_path)
    base = folder / "_base.html.j2"
    base.write_bytes(base.read_bytes() + b"\n")
    edited = NotificationRenderer(folder)
    for kind in KINDS:
        assert edited.template_hash(kind) != template_hash(kind)


def test_a_renderer_keeps_rendering_the_templates_it_hashed_even_if_the_files_change(tmp_path):
    folder = _copy_templates(tmp_path)
    renderer = NotificationRenderer(folder)
    before = renderer.render("dossier_lapsed", context_for("dossier_lapsed"))
    subject = folder / "dossier_lapsed" / "subject.txt.j2"
    subject.write_text("Autre objet {{ dossier.reference }}\n", encoding="utf-8")
    after = renderer.render("dossier_lapsed", context_for("dossier_lapsed"))
    assert after == before  # same text, same hash: the hash always describes what was rendered


# --------------------------------------------------------------------------- speed


def test_every_kind_of_piece_an_officer_may_request_has_a_french_label_in_the_letters():
    from notifications.rendering import DOCUMENT_LABELS
    from services.commands import DOCUMENT_KINDS

    assert set(DOCUMENT_KINDS) <= set(DOCUMENT_LABELS)
    message = render("documents_requested", context_for("documents_requested", kinds=["other"]))
    assert "autre pièce" in message.text


def test_every_letter_of_an_example_programme_says_its_figures_are_not_official():
    for kind in ("candidacy_received", "vote_result", "loan_disbursed", "repayment_reminder"):
        context = context_for(kind)
        context["dossier"]["example"] = True
        letter = render(kind, context)
        assert "Programme d'exemple — chiffres non officiels" in letter.text
        assert "Programme d'exemple — chiffres non officiels" in letter.html
    assert "chiffres non officiels" not in render("vote_result", context_for("vote_result")).text


def test_a_vote_letter_for_a_line_with_a_loan_gives_the_subsidy_the_loan_and_its_grant_equivalent():
    context = context_for("vote_result", aid={"subsidy": "20000.00", "loan": "100000.00", "total": "120000.00"},
                          loans=[{"kind": "zero_rate_loan", "principal": "100000.00", "annual_rate": "0.00",
                                  "deferral_months": 12, "instalments": 16, "legal_basis": "de_minimis",
                                  "gge": {"gge": "3012.34", "reference_rate": "0.0055", "discount_rate": "0.0055",
                                          "base_rate": "-0.0045", "granted_on": "2021-02-17",
                                          "oj_reference": "JO C 33 du 29.1.2021"}}])
    letter = render("vote_result", context)
    assert f"subvention : 20{NBSP}000,00{NBSP}€" in letter.text
    assert f"prêt : 100{NBSP}000,00{NBSP}€" in letter.text
    assert "à taux zéro" in letter.text and "16 échéances trimestrielles" in letter.text
    assert f"3{NBSP}012,34{NBSP}€" in letter.text and f"0,55{NBSP}%" in letter.text
    assert "phase 1" not in letter.text


def test_the_disbursement_letter_carries_the_schedule_as_a_table():
    letter = render("loan_disbursed", context_for("loan_disbursed"))
    assert "<caption>Échéancier de remboursement</caption>" in letter.html
    assert "15 octobre 2021" in letter.text and "22\u00a0030,00\u00a0€" in letter.text
    assert f"2,03{NBSP}%" in letter.text


def test_a_loan_repaid_in_full_closes_with_a_letter_that_gives_the_loans_balance():
    """A loan-only line has no subsidy: its closing letter speaks of the loan."""
    loan = {"principal": "48000.00", "disbursed": "48000.00", "repaid": "48000.00", "interest_paid": "0.00",
            "outstanding": "0.00", "instalments": 16, "next_due": None}
    message = render("dossier_closed", context_for("dossier_closed", loan=loan))
    assert f"capital remboursé : {euros('48000.00')}" in message.text and "Votre prêt est intégralement remboursé." in message.text
    assert "passé en perte" not in message.text and "Capital remboursé" in message.html
