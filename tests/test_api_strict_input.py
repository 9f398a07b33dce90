"""Strict input: a boolean is a boolean, an integer an integer, a date the text "AAAA-MM-JJ",
an amount a decimal text. What a lax parser would have guessed ("yes" as true, "45" as 45, true
as 1, a number of seconds as a date) is refused with 422 `invalid_input` naming the field, in
French, and nothing is written. A SIREN failing its Luhn key is 422 `siren_checksum`, before the
question of whose company it is (403)."""
from __future__ import annotations

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, GARONNE, OFFICER, counts, submit, to_action_plan

from rules.eligibility import CompanyFacts
from rules.errors import InvalidInput
from services import commands
from services.commands import Actor

CANDIDACY = {"programme": "occitanie-prif", "company": GARONNE}


def _refused(response, field: str) -> dict:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["rule"] == "invalid_input" and problem["field"] == field, problem
    assert problem["detail"].startswith(f"{field} : ")
    return problem


@pytest.mark.parametrize("submit_value", ["yes", "true", 1, 0, None])
def test_submit_takes_only_true_or_false(sign_in, uow_factory, submit_value):
    before = counts(uow_factory)
    r = sign_in(APPLICANT).post("/dossiers", json={**CANDIDACY, "submit": submit_value})
    problem = _refused(r, "submit")
    assert "true ou false" in problem["detail"]
    assert counts(uow_factory) == before


@pytest.mark.parametrize("field,value", [
    ("employees", True), ("employees", "45"), ("employees", 45.0), ("first_fy_months", "24"),
    ("in_difficulty", "false"), ("tax_social_up_to_date", 1), ("equity", 200000), ("siren", 732829320),
])
def test_a_company_fact_of_the_wrong_json_type_is_refused_not_converted(sign_in, uow_factory, field, value):
    before = counts(uow_factory)
    r = sign_in(APPLICANT).post("/dossiers", json={**CANDIDACY, "company": {**GARONNE, field: value}})
    _refused(r, f"company.{field}")
    assert counts(uow_factory) == before


def test_command_bodies_are_strict_too_days_ids_and_dates(sign_in, uow_factory):
    officer, applicant = sign_in(OFFICER), sign_in(APPLICANT)
    d = submit(applicant, GARONNE)
    officer.ok(d, "take_for_review")
    _refused(officer.command(d, "declare_eligible", {"consultant": "Cabinet Midi Conseil",
                                                     "phase1": {"days": "5", "day_rate": "1100.00"}}), "phase1.days")
    _refused(officer.command(d, "declare_eligible", {"consultant": "Cabinet Midi Conseil",
                                                     "phase1": {"days": 5, "day_rate": 1100}}), "phase1.day_rate")
    _refused(officer.command(d, "review_document", {"document_id": "1", "decision": "accepted"}), "document_id")
    _refused(officer.command(d, "request_documents", {"kinds": "rib"}), "kinds")
    assert counts(uow_factory)["events"] == 2  # the candidacy and taking it for review, nothing else


def test_a_date_is_the_text_aaaa_mm_jj_never_a_number_of_seconds(sign_in, clock, uow_factory):

    applicant = sign_in(APPLICANT)
    seconds = {"programme": "occitanie-prif", "company": GARONNE,
               "de_minimis_prior": [{"granted_on": 1592179200, "amount": "19000.00"}]}
    problem = _refused(applicant.post("/dossiers", json=seconds), "de_minimis_prior[0].granted_on")
    assert "AAAA-MM-JJ" in problem["detail"]
    _refused(applicant.post("/dossiers", json={**seconds, "de_minimis_prior": [
        {"granted_on": "2020-06-15T00:00:00", "amount": "19000.00"}]}), "de_minimis_prior[0].granted_on")
    assert counts(uow_factory)["dossiers"] == 0
    ok = applicant.post("/dossiers", json={**seconds, "de_minimis_prior": [
        {"granted_on": "2020-06-15", "amount": "19000.00"}]})
    assert ok.status_code == 201, ok.text
    d = ok.json()["dossier_id"]
    to_action_plan(sign_in, clock, d)
    # An invoice line's date, the same rule.
    r = applicant.command(d, "claim_payment", {"phase": 1, "kind": "final",
                                               "invoices": [{"date": 1615334400, "days": 5, "day_rate": "1100.00"}]})
    _refused(r, "invoices[0].date")
    _refused(applicant.command(d, "claim_payment", {"phase": True, "kind": "advance", "amount": "100.00"}), "phase")


def test_a_siren_failing_its_luhn_key_is_422_siren_checksum_and_another_companys_valid_siren_still_403(
        sign_in, uow_factory):
    applicant = sign_in(APPLICANT)
    bad = applicant.post("/dossiers", json={**CANDIDACY, "company": {**GARONNE, "siren": "732829321"}})
    assert bad.status_code == 422, bad.text
    assert bad.json()["rule"] == "siren_checksum" and bad.json()["field"] == "company.siren"
    assert "Luhn" in bad.json()["detail"]
    short = applicant.post("/dossiers", json={**CANDIDACY, "company": {**GARONNE, "siren": "73282932"}})
    _refused(short, "company.siren")  # too short: the body's own shape
    # The scope rule is intact: a well-formed SIREN that is not the applicant's company.
    other = applicant.post("/dossiers", json={**CANDIDACY, "company": {**GARONNE, "siren": "443061841"}})
    assert other.status_code == 403 and other.json()["rule"] == "not_allowed"
    assert counts(uow_factory)["dossiers"] == 0


@pytest.mark.parametrize("field,value", [("employees", True), ("employees", "45"), ("employees", 45.0),
                                         ("first_fy_months", "24"), ("in_difficulty", "yes")])
def test_the_company_facts_of_the_scenario_runner_and_the_cli_are_as_strict(field, value):
    with pytest.raises(InvalidInput) as refused:
        CompanyFacts.parse({**GARONNE, field: value})
    assert refused.value.field == f"company.{field}" and refused.value.rule == "invalid_input"


def test_a_candidacy_submitted_by_the_services_with_a_boolean_headcount_writes_nothing(uow_factory, clock):
    applicant = Actor("entreprise.garonne", "applicant", siren=GARONNE["siren"])
    with pytest.raises(InvalidInput) as refused:
        with uow_factory() as uow:
            commands.submit_candidacy(uow=uow, clock=clock, actor=applicant, programme_id="occitanie-prif",
                                      company={**GARONNE, "employees": True})
    assert refused.value.field == "company.employees"
    assert counts(uow_factory)["dossiers"] == 0
