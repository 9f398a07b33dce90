"""Free text typed by people — a company name, a reason, a deliberation number, a consultant's
name, a file name — never carries a control character or a Unicode bidirectional format
character (« \u202efdp.exe » reads « exe.pdf » on screen): one check (`rules.text`), the rule
`text_forbidden_character`, a French message naming the field, wherever the text comes from."""
from __future__ import annotations

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, GARONNE, HEAD, OFFICER, PDF, counts, submit

from rules.eligibility import CompanyFacts
from rules.errors import RuleViolation
from rules.text import RULE, check_text
from services import commands

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize("char", BIDI + CONTROLS)
def test_every_bidirectional_format_and_control_character_is_refused_naming_the_field(char):
    with pytest.raises(RuleViolation) as refused:
        check_text(f"Atelier{char}Garonne", "company.name")
    assert (refused.value.rule, refused.value.field) == (RULE, "company.name")
    assert refused.value.message.startswith("company.name : caractère interdit en position 8")
    assert f"U+{ord(char):04X}" in refused.value.message


def test_line_breaks_and_tabs_are_kept_in_a_reason_and_refused_in_a_name():
    reason = "Pièces incomplètes :\r\n\t- Kbis de plus de trois mois\n- RIB illisible"
    assert check_text(reason, "reason", multiline=True) == reason
    for char in "\n\r\t":
        with pytest.raises(RuleViolation):
            check_text(f"Atelier{char}Garonne", "company.name")


def test_ordinary_french_and_foreign_text_passes_untouched():
    for text in ("Société d'Études Œnologiques « L'Île » — 2 000,00 €", "Müller & Söhne GmbH", "Ålesund Fisk AS",
                 "شركة الأطلس", "=HYPERLINK(\"http://x\")"):  # formulas are neutralised in CSV files, not here
        assert check_text(text, "company.name") == text


def test_a_company_name_with_a_right_to_left_override_is_refused_by_the_rules():
    with pytest.raises(RuleViolation) as refused:
        CompanyFacts.parse({**GARONNE, "name": "Atelier \u202eSAS"})
    assert (refused.value.rule, refused.value.field) == (RULE, "company.name")


def test_the_api_refuses_a_bidi_company_name_and_writes_nothing(sign_in, uow_factory):
    before = counts(uow_factory)
    r = sign_in(APPLICANT).post("/dossiers", json={"programme": "occitanie-prif",
                                                   "company": {**GARONNE, "name": "Garonne \u202eSAS"}})
    assert r.status_code == 422
    body = r.json()
    assert (body["rule"], body["field"]) == (RULE, "company.name")
    assert "caractère interdit" in body["detail"] and "U+202E" in body["detail"]
    assert counts(uow_factory) == before


def test_the_api_refuses_a_reason_with_a_control_character_but_keeps_its_line_breaks(sign_in, uow_factory):
    applicant = sign_in(APPLICANT)
    dossier = submit(applicant, GARONNE)
    r = applicant.command(dossier, "withdraw", {"reason": "Projet reporté\x1b[31m"})
    assert r.status_code == 422 and (r.json()["rule"], r.json()["field"]) == (RULE, "reason")
    assert applicant.ok(dossier, "withdraw", {"reason": "Projet reporté.\r\nNous reviendrons en 2022."})["state"] == "withdrawn"


def test_the_api_refuses_a_file_name_with_a_bidi_override_and_stores_nothing(sign_in, uow_factory):
    applicant = sign_in(APPLICANT)
    dossier = submit(applicant, GARONNE)
    before = counts(uow_factory)
    r = applicant.upload(dossier, "rib", "\u202efdp.exe", PDF)
    assert r.status_code == 422
    assert (r.json()["rule"], r.json()["field"]) == (RULE, "filename")
    assert counts(uow_factory) == before


def test_a_deliberation_or_a_session_code_with_a_bidi_mark_is_refused_by_the_services(world, sign_in, uow_factory, clock):
    head = sign_in(HEAD)
    r = head.command(world.ready, "record_vote", {"session": world.session, "outcome": "approved",
                                                  "deliberation": "CP/2021-04/\u200f18"})
    assert r.status_code == 422 and (r.json()["rule"], r.json()["field"]) == (RULE, "deliberation")
    # The same check in the services, for callers that are not the API (CLI, scenarios, web).
    actor = commands.Actor(name="cheffe.occitanie", role="head", regions=("Occitanie",))
    for kwargs, field in (({"session": world.session, "deliberation": "CP\u2066/18"}, "deliberation"),
                          ({"session": "CP-2021\u202e-04", "deliberation": "CP/2021-04/18"}, "session")):
        with pytest.raises(RuleViolation) as refused:
            with uow_factory() as uow:
                commands.record_vote(uow=uow, clock=clock, actor=actor, dossier_id=world.ready, outcome="approved",
                                     **kwargs)
        assert (refused.value.rule, refused.value.field) == (RULE, field)
    assert sign_in(OFFICER).get(f"/dossiers/{world.ready}").json()["state"] == "ready_for_vote"


def test_a_consultant_name_and_an_account_display_name_are_checked_too(world, uow_factory, clock):
    from services.users import create_user

    officer = commands.Actor(name="agent.occitanie", role="officer", regions=("Occitanie",))
    with pytest.raises(RuleViolation) as refused:
        with uow_factory() as uow:
            commands.take_for_review(uow=uow, clock=clock, actor=officer, dossier_id=world.fresh)
        with uow_factory() as uow:
            commands.declare_eligible(uow=uow, clock=clock, actor=officer, dossier_id=world.fresh,
                                      consultant="Cabinet\u202e Midi", phase1={"days": 5, "day_rate": "1100.00"})
    assert (refused.value.rule, refused.value.field) == (RULE, "consultant")
    with pytest.raises(RuleViolation) as refused:
        with uow_factory() as uow:
            create_user(uow=uow, clock=clock, username="agent.test", password="un mot de passe long", role="officer",
                        display_name="Agent\x00Test", regions=["Occitanie"])
    assert (refused.value.rule, refused.value.field) == (RULE, "display_name")


def test_an_investment_expense_label_with_a_bidi_override_is_refused():
    from rules.instruments import parse_expenses

    with pytest.raises(RuleViolation) as refused:
        parse_expenses([{"label": "Robot \u202eexe.pdf", "amount": "12000.00"}], "expenses")
    assert (refused.value.rule, refused.value.field) == (RULE, "expenses[0].label")
    assert parse_expenses([{"label": "Robot de soudage", "amount": "12000.00"}], "expenses")[0].label == "Robot de soudage"
