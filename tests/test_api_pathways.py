"""The API of SPEC §11: Pays de la Loire's calls, lines and loans, Nouvelle-Aquitaine's aid
dossiers opened from a progress plan, and a company's pathway — through the command route
(If-Match, Idempotency-Key, problem+json naming the rule and the field)."""
from __future__ import annotations

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, APPLICANT_NAQ, OFFICER, OFFICER_NAQ, Session, at
from sqlalchemy import func, select

from db import models as m
from services import users as users_service
from services.sweep import sweep

LOIRE = {"siren": "441830007", "name": "Usinage Loire SAS", "employees": 80, "equity": "900000.00",
         "region": "Pays de la Loire", "first_fy_months": 36, "in_difficulty": False, "tax_social_up_to_date": True,
         "activity": "industrial"}
CHARENTE = {"siren": "853100006", "name": "Composites Charente SAS", "employees": 60, "equity": "800000.00",
            "region": "Nouvelle-Aquitaine", "first_fy_months": 60, "in_difficulty": False,
            "tax_social_up_to_date": True, "activity": "industrial"}
PDL, NAQ = "pdl-ami-idf-exemple", "naq-udf4-exemple"
STAFF = {"agent.pdl": ("officer", "Pays de la Loire"), "cheffe.pdl": ("head", "Pays de la Loire"),
         "finances.pdl": ("finance", "Pays de la Loire"), "cheffe.naq": ("head", "Nouvelle-Aquitaine"),
         "finances.naq": ("finance", "Nouvelle-Aquitaine")}
PASSWORD = "un mot de passe de test long"


@pytest.fixture
def people(app, uow_factory, clock, client):
    for username, (role, region) in STAFF.items():
        with uow_factory() as uow:
            users_service.create_user(uow=uow, clock=clock, username=username, password=PASSWORD, role=role,
                                      regions=[region])
    for username, siren in (("entreprise.loire", LOIRE["siren"]), ("entreprise.charente", CHARENTE["siren"])):
        with uow_factory() as uow:
            users_service.create_user(uow=uow, clock=clock, username=username, password=PASSWORD, role="applicant",
                                      siren=siren)
    return lambda username: Session(client, clock, username, PASSWORD)


def counts(uow_factory, dossier_id: int) -> tuple[int, int]:
    with uow_factory() as uow:
        events = uow.session.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == dossier_id))
        repayments = uow.session.scalar(select(func.count()).select_from(m.Repayment)
                                        .where(m.Repayment.dossier_id == dossier_id))
    return events, repayments


def voted_line_3(people, clock) -> int:
    """Golden 12's dossier through the API: line 3, voted, its loan cut to its cap."""
    applicant, officer, head = people("entreprise.loire"), people("agent.pdl"), people("cheffe.pdl")
    clock.set(at("2020-05-12T10:00:00+02:00"))
    r = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE, "line": 3})
    assert r.status_code == 201, r.text
    did = r.json()["dossier_id"]
    clock.set(at("2020-05-14T09:00:00+02:00"))
    officer.ok(did, "take_for_review")
    clock.set(at("2020-05-20T09:00:00+02:00"))
    eligible = officer.ok(did, "declare_eligible", {
        "expenses": [{"label": "Ligne d'usinage robotisée", "amount": "1050000.00"},
                     {"label": "Intégration et mise en service", "amount": "150000.00"}],
        "instruments": {"subsidy": "150000.00", "loan": "500000.00"}})
    assert eligible["state"] == "instruction"
    assert eligible["details"]["aid"] == {"subsidy": "100000.00", "loan": "400000.00", "total": "500000.00"}
    assert {a["rule"] for a in eligible["adjustments"]} >= {"loan_cap", "subsidy_cap"}
    clock.set(at("2020-06-02T09:00:00+02:00"))
    officer.ok(did, "propose_for_vote", {"session": "CP-2020-06"})
    clock.set(at("2020-06-16T15:00:00+02:00"))
    head.ok(did, "record_vote", {"session": "CP-2020-06", "outcome": "approved", "deliberation": "2020-06-112"})
    return did


def test_a_loan_asked_above_its_cap_is_cut_to_it_and_shown_as_a_loan_cap_adjustment(people, clock):
    did = voted_line_3(people, clock)
    detail = people("agent.pdl").get(f"/dossiers/{did}").json()
    cut = [a for a in detail["adjustments"] if a["rule"] == "loan_cap"]
    assert cut and cut[0]["amount"] == "100000.00"  # 500 000 € asked, 400 000 € the cap
    assert detail["aid"]["loan"] == "400000.00"
    assert (detail["line"], detail["call"], detail["example"]) == (3, "AMI-2020-2", True)
    assert detail["example_notice"] == "Programme d'exemple — chiffres non officiels"
    assert detail["loan"]["principal"] == "400000.00" and detail["loan"]["disbursed"] == "0.00"
    assert "disburse_loan" not in detail["allowed_commands"]  # an officer does not disburse


def test_finance_disburses_the_loan_and_records_repayments_with_if_match_and_idempotency(people, clock, uow_factory):
    did = voted_line_3(people, clock)
    finance = people("finances.pdl")
    assert people("agent.pdl").command(did, "disburse_loan").status_code == 403
    clock.set(at("2020-07-15T10:00:00+02:00"))
    assert "disburse_loan" in finance.get(f"/dossiers/{did}").json()["allowed_commands"]
    out = finance.ok(did, "disburse_loan")
    assert out["state"] == "in_repayment" and out["details"]["loan"]["instalments"] == 24
    again = finance.command(did, "disburse_loan")
    assert again.status_code == 409 and again.json()["field"] == "do"

    clock.set(at("2020-10-15T12:00:00+02:00"))
    version = finance.get(f"/dossiers/{did}").json()["version"]
    stale = finance.command(did, "record_repayment", {"amount": "2030.00", "received_on": "2020-10-15"},
                            headers={"If-Match": f'"{version - 1}"'})
    assert stale.status_code == 409 and stale.json()["rule"] == "conflict"
    key = {"If-Match": f'"{version}"', "Idempotency-Key": "remboursement-2020-10-15"}
    first = finance.command(did, "record_repayment", {"amount": "2030.00", "received_on": "2020-10-15"}, headers=key)
    replay = finance.command(did, "record_repayment", {"amount": "2030.00", "received_on": "2020-10-15"}, headers=key)
    assert first.status_code == replay.status_code == 200 and first.json() == replay.json()
    assert first.json()["details"]["loan"]["interest_paid"] == "2030.00"
    assert counts(uow_factory, did)[1] == 1

    detail = finance.get(f"/dossiers/{did}").json()
    assert detail["loan"]["next_due"] == {"date": "2021-01-15", "principal": "0.00", "interest": "2030.00"}
    assert "record_repayment" in detail["allowed_commands"]
    listed = finance.get("/dossiers", params={"call": "AMI-2020-2", "line": 3}).json()["items"]
    assert [(r["id"], r["loan_outstanding"], r["loan_next_due_on"]) for r in listed] == [(did, "400000.00", "2021-01-15")]
    assert finance.get("/dossiers", params={"call": "AMI-2020-2", "line": 2}).json()["total"] == 0
    assert finance.get("/dossiers", params={"call": "AMI-2021-1"}).json()["total"] == 0


def test_a_repayment_above_what_is_due_is_refused_as_overpayment_and_nothing_is_written(people, clock, uow_factory):
    did = voted_line_3(people, clock)
    finance = people("finances.pdl")
    clock.set(at("2020-07-15T10:00:00+02:00"))
    finance.ok(did, "disburse_loan")
    clock.set(at("2021-01-16T12:00:00+01:00"))
    before = counts(uow_factory, did)
    # Due on 16/01/2021: two interest-only instalments, 4 060 €; 5 000 € is neither that nor the full repayment.
    r = finance.command(did, "record_repayment", {"amount": "5000.00", "received_on": "2021-01-16"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert (r.json()["rule"], r.json()["field"]) == ("overpayment", "amount")
    assert counts(uow_factory, did) == before
    future = finance.command(did, "record_repayment", {"amount": "2030.00", "received_on": "2021-02-01"})
    assert (future.status_code, future.json()["field"]) == (422, "received_on")
    assert finance.command(did, "record_repayment", {"amount": 2030, "received_on": "2021-01-16"}).status_code == 422
    assert counts(uow_factory, did) == before


def test_the_head_writes_off_a_loan_in_default_with_a_reason_and_the_dossier_closes(people, clock, uow_factory):
    did = voted_line_3(people, clock)
    finance, head = people("finances.pdl"), people("cheffe.pdl")
    clock.set(at("2020-07-15T10:00:00+02:00"))
    finance.ok(did, "disburse_loan")
    early = head.command(did, "write_off", {"reason": "Entreprise en liquidation."})
    assert early.status_code == 409 and early.json()["rule"] == "not_allowed"  # not in default yet
    clock.set(at("2020-12-15T06:00:00+01:00"))  # the 15/10/2020 instalment unpaid for 61 days
    sweep(uow_factory=uow_factory, clock=clock)
    assert head.get(f"/dossiers/{did}").json()["state"] == "in_default"
    assert finance.command(did, "write_off", {"reason": "x"}).status_code == 403
    assert head.command(did, "write_off", {"reason": ""}).status_code == 422
    out = head.ok(did, "write_off", {"reason": "Liquidation judiciaire : créance irrécouvrable."})
    assert out["state"] == "closed" and out["details"]["written_off"] == "400000.00"
    assert head.get(f"/dossiers/{did}").json()["written_off"] == "400000.00"


def test_a_line_3_candidacy_may_cite_the_companys_earlier_dossier_only(people, clock, sign_in):
    applicant = people("entreprise.loire")
    clock.set(at("2020-05-04T10:00:00+02:00"))
    first = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE}).json()["dossier_id"]
    r = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE, "line": 3, "cites": first})
    assert r.status_code == 201, r.text
    assert people("agent.pdl").get(f"/dossiers/{r.json()['dossier_id']}").json()["cites"] == \
        people("agent.pdl").get(f"/dossiers/{first}").json()["reference"]
    wrong = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE, "line": 3, "cites": 999999})
    assert (wrong.status_code, wrong.json()["field"]) == (422, "cites")
    unknown = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE, "line": 7})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "line")
    clock.set(at("2020-07-10T10:00:00+02:00"))
    closed = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE, "line": 2})
    assert (closed.status_code, closed.json()["rule"]) == (422, "window_closed")


def test_a_loan_granted_before_the_base_rate_table_is_refused_as_reference_rate_unknown(people, clock, uow_factory):
    applicant, officer = people("entreprise.loire"), people("agent.pdl")
    clock.set(at("2019-05-10T10:00:00+02:00"))
    did = applicant.post("/dossiers", json={"programme": PDL, "company": LOIRE, "line": 2}).json()["dossier_id"]
    officer.ok(did, "take_for_review")
    officer.ok(did, "declare_eligible", {"expenses": [{"label": "Banc d'essai", "amount": "200000.00"}],
                                         "instruments": {"loan": "100000.00"}})
    before = counts(uow_factory, did)
    r = officer.command(did, "propose_for_vote", {"session": "CP-2019-06"})
    assert r.status_code == 422, r.text
    assert (r.json()["rule"], r.json()["field"]) == ("reference_rate_unknown", "granted_on")
    assert counts(uow_factory, did) == before


def naq_plan_proposed(people, clock, sign_in) -> int:
    applicant, officer = people("entreprise.charente"), sign_in(OFFICER_NAQ)
    clock.set(at("2024-09-03T10:00:00+02:00"))
    did = applicant.post("/dossiers", json={"programme": NAQ, "company": CHARENTE}).json()["dossier_id"]
    officer.ok(did, "take_for_review")
    officer.ok(did, "declare_eligible", {"consultant": "Atlantique Lean Conseil", "phase1": {"days": 8, "day_rate": "950.00"}})
    officer.ok(did, "provide_documents", {"kinds": ["diagnostic_report"]})
    officer.ok(did, "accept_diagnostic")
    applicant.ok(did, "provide_documents", {"kinds": ["action_plan"]})
    bad = applicant.command(did, "submit_action_plan", {"actions": [{"number": 1, "theme": "fiscal", "budget": "1.00"}]})
    assert (bad.status_code, bad.json()["field"]) == (422, "actions[0].theme")
    applicant.ok(did, "submit_action_plan", {"actions": [
        {"number": 1, "theme": "economic", "budget": "240000.00"},
        {"number": 2, "theme": "environmental", "budget": "90000.00"},
        {"number": 3, "theme": "social", "budget": "25000.00"}]})
    clock.set(at("2024-10-22T09:00:00+02:00"))
    officer.ok(did, "propose_for_vote", {"session": "CP-2024-11"})
    return did


INVESTMENT = {"expenses": [{"label": "Presse à injecter", "amount": "180000.00"},
                           {"label": "Outillage", "amount": "60000.00"}]}


def test_aid_dossiers_open_from_the_approved_plan_for_actions_it_has_and_not_yet_covered(people, clock, sign_in,
                                                                                          uow_factory):
    plan = naq_plan_proposed(people, clock, sign_in)
    applicant = people("entreprise.charente")
    clock.set(at("2024-10-25T09:00:00+02:00"))
    early = applicant.post(f"/dossiers/{plan}/aid-dossiers", json={"actions": [1], "investment": INVESTMENT})
    assert early.status_code == 422 and (early.json()["rule"], early.json()["field"]) == ("plan_not_approved", "plan")
    clock.set(at("2024-11-05T15:00:00+01:00"))
    people("cheffe.naq").ok(plan, "record_vote", {"session": "CP-2024-11", "outcome": "approved",
                                                  "deliberation": "2024-11-210"})
    clock.set(at("2024-11-12T10:00:00+01:00"))
    key = {"Idempotency-Key": "dossier-aide-action-1"}
    a1 = applicant.post(f"/dossiers/{plan}/aid-dossiers", json={"actions": [1], "investment": INVESTMENT}, headers=key)
    assert a1.status_code == 201, a1.text
    assert a1.json()["state"] == "instruction" and a1.json()["details"]["aid"]["subsidy"] == "40000.00"
    assert [a["rule"] for a in a1.json()["adjustments"]] == ["subsidy_cap"]
    assert a1.headers["Location"] == f"/dossiers/{a1.json()['dossier_id']}"
    replay = applicant.post(f"/dossiers/{plan}/aid-dossiers", json={"actions": [1], "investment": INVESTMENT}, headers=key)
    assert replay.status_code == 201 and replay.json()["dossier_id"] == a1.json()["dossier_id"]
    covered = applicant.post(f"/dossiers/{plan}/aid-dossiers",
                             json={"actions": [1, 2], "consulting": {"days": 12, "day_rate": "1100.00"}})
    assert (covered.status_code, covered.json()["rule"], covered.json()["field"]) == (422, "action_covered", "actions")
    missing = applicant.post(f"/dossiers/{plan}/aid-dossiers",
                             json={"actions": [9], "consulting": {"days": 12, "day_rate": "1100.00"}})
    assert (missing.status_code, missing.json()["rule"]) == (422, "action_not_in_plan")
    # Another company cannot open an aid dossier on this plan: it does not see it.
    other = sign_in(APPLICANT_NAQ).post(f"/dossiers/{plan}/aid-dossiers",
                                        json={"actions": [2], "consulting": {"days": 12, "day_rate": "1100.00"}})
    assert other.status_code == 404 and other.json()["rule"] == "not_found"
    assert sign_in(OFFICER_NAQ).post(f"/dossiers/{plan}/aid-dossiers", json={"actions": [2]}).status_code == 403
    with uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(m.Dossier).where(m.Dossier.plan_id == plan)) == 1
    detail = applicant.get(f"/dossiers/{a1.json()['dossier_id']}").json()
    assert (detail["plan"], detail["actions"]) == (applicant.get(f"/dossiers/{plan}").json()["reference"], [1])
    assert "propose_for_vote" in sign_in(OFFICER_NAQ).get(f"/dossiers/{a1.json()['dossier_id']}").json()["allowed_commands"]


def test_a_companys_pathway_is_seen_by_the_company_and_its_regions_staff_only(people, clock, sign_in):
    plan = naq_plan_proposed(people, clock, sign_in)
    clock.set(at("2024-11-05T15:00:00+01:00"))
    people("cheffe.naq").ok(plan, "record_vote", {"session": "CP-2024-11", "outcome": "approved",
                                                  "deliberation": "2024-11-210"})
    applicant = people("entreprise.charente")
    applicant.post(f"/dossiers/{plan}/aid-dossiers", json={"actions": [1], "investment": INVESTMENT})
    mine = applicant.get(f"/companies/{CHARENTE['siren']}/pathway")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["name"] == "Composites Charente SAS" and body["on"] == "2024-11-05"
    assert [(d["state"], d["actions"]) for d in body["dossiers"]] == [("approved", None), ("instruction", [1])]
    assert body["dossiers"][0]["plan_actions"][0] == {"number": 1, "theme": "economic", "budget": "240000.00"}
    assert body["dossiers"][1]["aid"]["subsidy"] == "40000.00" and body["dossiers"][1]["example"] is True
    assert body["de_minimis"]["remaining"]
    assert sign_in(OFFICER_NAQ).get(f"/companies/{CHARENTE['siren']}/pathway").status_code == 200
    assert sign_in(OFFICER).get(f"/companies/{CHARENTE['siren']}/pathway").status_code == 404
    assert sign_in(APPLICANT).get(f"/companies/{CHARENTE['siren']}/pathway").status_code == 404
    assert sign_in(OFFICER_NAQ).get("/companies/000000000/pathway").status_code == 404


def test_a_subsidy_voted_with_a_loan_is_claimed_on_invoices_and_paid_while_the_loan_is_repaid(people, clock):
    did = voted_line_3(people, clock)
    finance, applicant = people("finances.pdl"), people("entreprise.loire")
    clock.set(at("2020-07-15T10:00:00+02:00"))
    finance.ok(did, "disburse_loan")
    clock.set(at("2021-03-01T10:00:00+01:00"))
    claim = applicant.ok(did, "claim_payment", {"phase": 3, "kind": "final", "invoices": [
        {"date": "2020-09-30", "amount": "600000.00"}, {"date": "2021-02-15", "amount": "300000.00"}]})
    assert claim["state"] == "in_repayment"
    clock.set(at("2021-03-05T10:00:00+01:00"))
    paid = finance.ok(did, "pay")
    # 10 % of the 900 000 € justified: the subsidy is paid on its claim, the loan runs on.
    assert paid["state"] == "in_repayment"
    detail = finance.get(f"/dossiers/{did}").json()
    assert detail["paid"] == "90000.00" and detail["loan"]["outstanding"] == "400000.00"
