"""The applicant portal's candidacy form, through its services (services/candidacy_drafts.py):
steps checked and kept as a draft, the draft dossier made by the lifecycle's own use case, the
pieces, the submission in one unit of work — and the consultants' need-to-know rule on pieces."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from portal_support import CALL_OPEN, COMPANY_FORM, DE_MINIMIS_FORM, LOIRE_SIREN, PDL, PROJECT_FORM
from sqlalchemy import func, select

from db import models as m
from db.models_portal import CandidacyDraft
from rules.documents import CONSULTANT_NEED_TO_KNOW, check_piece_visible, piece_visible
from rules.errors import RuleViolation
from rules.money import parse_french_amount
from services import candidacy_drafts as drafts
from services import commands
from services.clock import FrozenClock
from services.commands import Actor

COMPANY = Actor("entreprise.loire", "applicant", siren=LOIRE_SIREN)
OFFICER = Actor("agent.pays-de-la-loire", "officer", regions=("Pays de la Loire",))
PDF = b"%PDF-1.4\n% piece de test\n"


@pytest.fixture
def call_clock():
    return FrozenClock(CALL_OPEN)


def _count(uow_factory, model) -> int:
    with uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def _draft(uow_factory, clock) -> int:
    with uow_factory() as uow:
        return drafts.start_draft(uow=uow, clock=clock, actor=COMPANY, programme_id=PDL)


def _save(uow_factory, clock, draft_id, step, values):
    with uow_factory() as uow:
        return drafts.save_step(uow=uow, clock=clock, actor=COMPANY, draft_id=draft_id, step=step, values=values)


def _through_the_form(uow_factory, clock) -> tuple[int, int]:
    draft_id = _draft(uow_factory, clock)
    _save(uow_factory, clock, draft_id, "entreprise", COMPANY_FORM)
    _save(uow_factory, clock, draft_id, "projet", PROJECT_FORM)
    done = _save(uow_factory, clock, draft_id, "de_minimis", DE_MINIMIS_FORM)
    return draft_id, done["dossier_id"]


def test_french_amounts_are_read_as_a_person_types_them():
    assert parse_french_amount("12 500,50", "Montant") == Decimal("12500.50")
    assert parse_french_amount("12\u202f500,50 €", "Montant") == Decimal("12500.50")
    assert parse_french_amount("12500.5", "Montant") == Decimal("12500.50")
    for wrong in ("12.500,50", "douze", "12 500,505", "-3"):
        with pytest.raises(RuleViolation) as refused:
            parse_french_amount(wrong, "Montant")
        assert refused.value.rule == "invalid_input" and "Montant" in refused.value.message


def test_a_step_refused_for_a_bad_siren_writes_nothing_and_names_the_field_and_the_rule(uow_factory, call_clock):
    draft_id = _draft(uow_factory, call_clock)
    with pytest.raises(drafts.StepRefused) as refused:
        _save(uow_factory, call_clock, draft_id, "entreprise", {**COMPANY_FORM, "siren": "552 100 555"})
    error = refused.value.errors["siren"]
    assert error.rule == "siren_checksum"
    assert error.message.startswith("SIREN : ") and "clé de Luhn" in error.message
    with uow_factory() as uow:
        assert drafts.get_draft(uow, COMPANY, draft_id).steps == {}
    # Corrected, the step is kept.
    assert _save(uow_factory, call_clock, draft_id, "entreprise", COMPANY_FORM)["next"] == "projet"


def test_the_company_step_checks_the_region_the_size_class_and_the_company_of_the_account(uow_factory, call_clock):
    draft_id = _draft(uow_factory, call_clock)
    cases = [({"region": "Bretagne"}, "region", "region"),
             ({"employees": "6200"}, "employees", "size"),
             ({"siren": "732 829 320"}, "siren", "not_allowed"),
             ({"equity": "850.000,00"}, "equity", "invalid_input"),
             ({"tax_social_up_to_date": "non"}, "tax_social_up_to_date", "tax_social")]
    for change, field, rule in cases:
        with pytest.raises(drafts.StepRefused) as refused:
            _save(uow_factory, call_clock, draft_id, "entreprise", {**COMPANY_FORM, **change})
        assert refused.value.errors[field].rule == rule, change
    with uow_factory() as uow:
        programme = uow.catalogue.latest(PDL)
    assert drafts.live_check(programme, COMPANY, "employees", "300")[1] == "Catégorie d'après l'effectif : ETI"
    assert drafts.live_check(programme, COMPANY, "employees", "5000")[1].endswith("grande entreprise (GE)")
    assert drafts.live_check(programme, COMPANY, "siren", "552100555")[0].rule == "siren_checksum"
    assert drafts.live_check(programme, COMPANY, "region", "Occitanie")[0].rule == "region"


def test_the_project_step_refuses_an_aid_above_the_expense(uow_factory, call_clock):
    draft_id = _draft(uow_factory, call_clock)
    _save(uow_factory, call_clock, draft_id, "entreprise", COMPANY_FORM)
    with pytest.raises(drafts.StepRefused) as refused:
        _save(uow_factory, call_clock, draft_id, "projet", {**PROJECT_FORM, "aid_requested": "20 000,00"})
    assert "dépasse le montant des dépenses" in refused.value.errors["aid_requested"].message


def test_the_de_minimis_step_needs_the_attestation_and_counts_the_aids_declared(uow_factory, call_clock):
    draft_id = _draft(uow_factory, call_clock)
    _save(uow_factory, call_clock, draft_id, "entreprise", COMPANY_FORM)
    _save(uow_factory, call_clock, draft_id, "projet", PROJECT_FORM)
    with pytest.raises(drafts.StepRefused) as refused:
        _save(uow_factory, call_clock, draft_id, "de_minimis", {**DE_MINIMIS_FORM, "attestation": ""})
    assert refused.value.errors["attestation"].rule == "de_minimis"
    assert _count(uow_factory, m.Dossier) == 0
    room = drafts.de_minimis_room([{"granted_on": "2019-03-12", "amount": "15000.00"}], CALL_OPEN.date())
    assert room["ceiling"] == Decimal("200000.00") and room["remaining"] == Decimal("185000.00")


def test_the_last_form_step_makes_the_draft_dossier_with_the_lifecycles_own_use_case(uow_factory, call_clock):
    draft_id, dossier_id = _through_the_form(uow_factory, call_clock)
    with uow_factory() as uow:
        dossier = uow.dossier(dossier_id)
        assert dossier.status == "draft" and dossier.line == 1
        assert dossier.company_facts["siren"] == LOIRE_SIREN and dossier.company_facts["equity"] == "850000.00"
        event = uow.session.scalar(select(m.Event).where(m.Event.dossier_id == dossier_id))
        assert event.command == "start_candidacy"
        assert event.data["project"]["expense"] == "12500.50"
        assert event.data["de_minimis_prior"] == [{"granted_on": "2019-03-12", "amount": "15000.00"}]
        assert drafts.get_draft(uow, COMPANY, draft_id).dossier_id == dossier_id
    # The form steps are then fixed: the dossier holds them.
    with pytest.raises(RuleViolation) as refused:
        _save(uow_factory, call_clock, draft_id, "entreprise", COMPANY_FORM)
    assert refused.value.rule == "not_allowed"


def test_a_draft_is_resumed_where_it_was_left_by_the_same_account_only(uow_factory, call_clock):
    draft_id = _draft(uow_factory, call_clock)
    _save(uow_factory, call_clock, draft_id, "entreprise", COMPANY_FORM)
    # Signed out and back: the same draft, at the project step, with what was typed.
    assert _draft(uow_factory, call_clock) == draft_id
    with uow_factory() as uow:
        draft = drafts.drafts_of(uow, COMPANY)[0]
        assert drafts.next_step(draft) == "projet"
        assert draft.steps["entreprise"]["typed"]["equity"] == "850 000,00"
        other = Actor("entreprise.autre", "applicant", siren="443061841")
        with pytest.raises(Exception):
            drafts.get_draft(uow, other, draft_id)


def test_submitting_without_every_piece_is_refused_and_changes_nothing(uow_factory, call_clock):
    draft_id, dossier_id = _through_the_form(uow_factory, call_clock)
    events = _count(uow_factory, m.Event)
    with pytest.raises(RuleViolation) as refused, uow_factory() as uow:
        drafts.submit_draft(uow=uow, clock=call_clock, actor=COMPANY, draft_id=draft_id)
    assert refused.value.rule == "documents_missing"
    with uow_factory() as uow:
        assert uow.dossier(dossier_id).status == "draft"
        assert drafts.get_draft(uow, COMPANY, draft_id).submitted_at is None
    assert _count(uow_factory, m.Event) == events


def _upload_all(uow_factory, clock, dossier_id):
    with uow_factory() as uow:
        kinds = uow.catalogue.latest(PDL).documents.candidacy
    for kind in kinds:
        with uow_factory() as uow:
            commands.upload_document(uow=uow, clock=clock, actor=COMPANY, dossier_id=dossier_id, kind=kind,
                                     filename=f"{kind}.pdf", content=PDF + kind.encode(), content_type="application/pdf")


def test_a_complete_candidacy_is_submitted_under_the_open_call_in_one_unit_of_work(uow_factory, call_clock):
    draft_id, dossier_id = _through_the_form(uow_factory, call_clock)
    _upload_all(uow_factory, call_clock, dossier_id)
    with uow_factory() as uow:
        outcome = drafts.submit_draft(uow=uow, clock=call_clock, actor=COMPANY, draft_id=draft_id)
    assert outcome.state == "submitted"
    with uow_factory() as uow:
        dossier = uow.dossier(dossier_id)
        assert dossier.call_code == "AMI-2020-2"
        assert drafts.get_draft(uow, COMPANY, draft_id).submitted_at is not None
        assert drafts.drafts_of(uow, COMPANY) == []
        kinds = uow.session.scalars(select(m.Notification.kind).where(m.Notification.dossier_id == dossier_id)).all()
        assert "candidacy_received" in kinds


def test_a_submission_after_the_call_closed_is_refused_and_the_draft_stays_a_draft(uow_factory, call_clock):
    draft_id, dossier_id = _through_the_form(uow_factory, call_clock)
    _upload_all(uow_factory, call_clock, dossier_id)
    late = FrozenClock(CALL_OPEN + timedelta(days=60))  # 14/07/2020: AMI-2020-2 closed on 30/06
    with pytest.raises(RuleViolation) as refused, uow_factory() as uow:
        drafts.submit_draft(uow=uow, clock=late, actor=COMPANY, draft_id=draft_id)
    assert refused.value.rule == "window_closed"
    with uow_factory() as uow:
        assert uow.dossier(dossier_id).status == "draft"
        assert uow.session.get(CandidacyDraft, draft_id).submitted_at is None


def test_no_draft_is_started_when_no_call_of_the_programme_is_open(uow_factory):
    with pytest.raises(RuleViolation) as refused, uow_factory() as uow:
        drafts.start_draft(uow=uow, clock=FrozenClock(CALL_OPEN + timedelta(days=60)), actor=COMPANY, programme_id=PDL)
    assert refused.value.rule == "window_closed"
    assert _count(uow_factory, CandidacyDraft) == 0


def test_consultants_see_no_bank_details_nor_tax_and_social_certificates():
    for kind in ("rib", "tax_certificate", "social_certificate", "financial_statement", "de_minimis_attestation", "other"):
        assert not piece_visible("consultant", kind), kind
        with pytest.raises(RuleViolation) as refused:
            check_piece_visible("consultant", kind, kind)
        assert refused.value.rule == CONSULTANT_NEED_TO_KNOW
    for kind in ("kbis", "diagnostic_report", "consultant_quote", "invoice"):
        assert piece_visible("consultant", kind)
    for role in ("applicant", "officer", "head", "finance", "auditor"):
        assert piece_visible(role, "rib") and piece_visible(role, "tax_certificate")


def test_on_the_demo_day_the_gironde_company_finds_the_nouvelle_aquitaine_call_open(uow_factory):
    from datetime import datetime

    from rules.calendar import PARIS

    with uow_factory() as uow:
        calls = drafts.open_calls(uow, datetime(2025, 6, 15, 9, tzinfo=PARIS).date())
    assert "naq-udf4-exemple" in [programme.id for programme, _ in calls]
    assert "naq-udf4" not in [programme.id for programme, _ in calls]  # incomplete: never instructible
    assert PDL not in [programme.id for programme, _ in calls]  # its calls ran 2019–2021


def test_the_dossiers_history_says_the_project_the_company_described(uow_factory, call_clock):
    from services.wording import describe

    _, dossier_id = _through_the_form(uow_factory, call_clock)
    with uow_factory() as uow:
        event = uow.session.scalar(select(m.Event).where(m.Event.dossier_id == dossier_id))
        said = describe({"command": event.command, "data": event.data})
    assert said == ("Candidature commencée (brouillon) : projet « Diagnostic de la ligne de drapage », dépenses "
                    "12\u00a0500,50\u00a0€ HT, aide demandée 6\u00a0250,25\u00a0€.")
