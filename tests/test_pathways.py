"""SPEC §11 end to end: calls, aid lines with instruments, loans repaid on their schedule, and a
company's pathway of dossiers — the golden pathway files, their replay, and the refusals a
finance department relies on (nothing written when refused)."""
import copy
import json

import pytest
from sqlalchemy import func, select

from db import models as m
from services.audit.replay import diff, replay_dossier, stored_state
from services.scenario import run_file, run_scenario
from services.storage import InMemoryStorage
from services.uow import unit_of_work_factory
from tests.helpers import SCENARIOS

PATHWAYS = sorted((SCENARIOS / "pathways").glob("golden-*.json"))


def _doc(name: str) -> dict:
    return json.loads((SCENARIOS / "pathways" / name).read_text("utf-8"))


def _counts(url: str) -> dict:
    factory = unit_of_work_factory(url, storage=InMemoryStorage())
    with factory() as uow:
        out = {t.__tablename__: uow.session.scalar(select(func.count()).select_from(t))
               for t in (m.Dossier, m.Event, m.Notification, m.Repayment, m.PaymentClaim, m.DeMinimisAid)}
    factory.engine.dispose()
    return out


@pytest.mark.parametrize("path", PATHWAYS, ids=lambda p: p.stem)
def test_every_golden_pathway_file_plays_exactly_and_its_history_verifies(path, database_url):
    result = run_file(path, database_url=database_url)
    assert result["expectations"]["failures"] == []
    assert result["expectations"]["passed"] > 10
    assert result["final"]["history_verified"] is True


@pytest.mark.parametrize("path", PATHWAYS, ids=lambda p: p.stem)
def test_every_dossier_of_a_pathway_replays_from_its_events_to_the_stored_state(path, database_url):
    run_file(path, database_url=database_url)
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    with factory() as uow:
        ids = uow.session.scalars(select(m.Dossier.id).order_by(m.Dossier.id)).all()
        assert ids
        for dossier_id in ids:
            replay = replay_dossier(uow.session, dossier_id)
            assert replay.discrepancies == [], (dossier_id, [d.as_dict() for d in replay.discrepancies])
            assert diff(replay, stored_state(uow.session, dossier_id)) == []
    factory.engine.dispose()


def test_a_loan_history_replays_to_the_same_schedule_and_balances_at_any_instant(database_url):
    from datetime import datetime

    run_file(SCENARIOS / "pathways" / "golden-12-pdl-deployment-loan.json", database_url=database_url)
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    with factory() as uow:
        dossier_id = uow.session.scalar(select(m.Dossier.id))
        mid = replay_dossier(uow.session, dossier_id, at=datetime.fromisoformat("2021-12-01T12:00:00+01:00"))
    factory.engine.dispose()
    assert mid.state["status"] == "in_repayment"
    assert mid.state["loan"]["outstanding"] == "380000.00" and mid.state["loan"]["interest_paid"] == "10150.00"
    assert mid.state["loan"]["next_due"] == {"date": "2022-01-15", "principal": "20000.00", "interest": "1928.50"}


def test_a_repayment_above_what_is_due_is_refused_as_overpayment_and_writes_nothing(database_url):
    doc = _doc("golden-12-pdl-deployment-loan.json")
    steps = doc["steps"][:7]  # disbursed, first interest paid
    prefix = run_scenario({"name": "t", "programme": doc["programme"], "steps": steps}, database_url=database_url)
    assert prefix["expectations"]["failures"] == []
    before = _counts(database_url)
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    from datetime import datetime

    from rules.errors import RuleViolation
    from services.clock import FrozenClock
    from services.commands import Actor
    from services.loans import record_repayment

    with factory() as uow:
        dossier_id = uow.session.scalar(select(m.Dossier.id))
    with pytest.raises(RuleViolation) as refused, factory() as uow:
        record_repayment(uow=uow, clock=FrozenClock(datetime.fromisoformat("2020-11-02T10:00:00+01:00")),
                         actor=Actor("Service financier", "finance"), dossier_id=dossier_id,
                         amount="2030.01", received_on="2020-11-02")
    factory.engine.dispose()
    assert refused.value.rule == "overpayment" and refused.value.field == "amount"
    assert _counts(database_url) == before


def test_a_loan_asked_above_its_caps_is_cut_never_refused():
    result = run_file(SCENARIOS / "pathways" / "golden-12-pdl-deployment-loan.json")
    eligible = result["steps"][2]
    assert {"rule": "loan_cap", "phase": 3, "base": "aid", "amount": "100000.00"} in eligible["adjustments"]
    assert {"rule": "subsidy_cap", "phase": 3, "base": "aid", "amount": "50000.00"} in eligible["adjustments"]
    zero_rate = run_file(SCENARIOS / "pathways" / "golden-13-pdl-zero-rate-loan-default.json")
    # 30,000 € of subsidy + 100,000 € of loan > 60 % of 200,000 €: the combined cap cuts the subsidy.
    assert {"rule": "subsidy_cap", "phase": 2, "base": "aid", "amount": "10000.00"} in zero_rate["steps"][2]["adjustments"]


def test_an_aid_dossier_for_an_action_of_another_companys_plan_is_refused_and_writes_nothing(database_url):
    from datetime import datetime

    from rules.errors import NotAllowed
    from services.clock import FrozenClock
    from services.commands import Actor
    from services.pathways import open_aid_dossier

    doc = _doc("golden-15-naq-pathway.json")
    steps = [s for s in doc["steps"][:10] if s["do"] != "open_aid_dossier"]
    run_scenario({"name": "t", "programme": doc["programme"], "steps": steps}, database_url=database_url)
    before = _counts(database_url)
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    with factory() as uow:
        plan_id = uow.session.scalar(select(m.Dossier.id))
    other_company = Actor("Mme Lefèvre (Fonderie de Charente)", "applicant", siren="552100554")
    with pytest.raises(NotAllowed), factory() as uow:
        open_aid_dossier(uow=uow, clock=FrozenClock(datetime.fromisoformat("2024-11-12T10:00:00+01:00")),
                         actor=other_company, plan_id=plan_id, actions=[1],
                         investment={"expenses": [{"label": "Presse", "amount": "100000.00"}]})
    factory.engine.dispose()
    assert _counts(database_url) == before


def test_an_action_the_plan_does_not_have_is_refused_naming_the_rule():
    doc = _doc("golden-15-naq-pathway.json")
    steps = copy.deepcopy(doc["steps"][:11])
    steps[10]["with"]["actions"] = [7]
    steps[10]["expect"] = {"refused": "action_not_in_plan"}
    result = run_scenario({"name": "t", "programme": doc["programme"], "steps": steps})
    assert result["expectations"]["failures"] == []
    assert result["steps"][10]["refused"]["field"] == "actions"


def test_a_loan_granted_on_a_day_no_base_rate_period_covers_is_refused_never_guessed(database_url):
    doc = _doc("golden-13-pdl-zero-rate-loan-default.json")
    # The same life one call earlier, in 2019: the base-rate table has no period for it.
    steps = copy.deepcopy(doc["steps"][:4])
    for step, at in zip(steps, ("2019-05-20T10:00:00+02:00", "2019-05-22T09:00:00+02:00",
                                "2019-05-28T09:00:00+02:00", "2019-06-03T09:00:00+02:00")):
        step["at"] = at
        step.pop("expect", None)
    steps[0]["expect"] = {"call": "AMI-2019-2"}
    steps[3]["expect"] = {"refused": "reference_rate_unknown", "state": "instruction"}
    result = run_scenario({"name": "t", "programme": doc["programme"], "steps": steps}, database_url=database_url)
    assert result["expectations"]["failures"] == []
    assert result["steps"][3]["refused"]["field"] == "granted_on"
    assert _counts(database_url)["de_minimis_aids"] == 0


def test_the_reminder_and_the_default_of_an_unpaid_instalment_happen_once_however_often_the_sweep_runs():
    doc = _doc("golden-13-pdl-zero-rate-loan-default.json")
    steps = copy.deepcopy(doc["steps"][:11])
    steps.insert(10, {"at": "2022-10-03T07:00:00+02:00", "do": "sweep"})
    steps.insert(12, {"at": "2022-11-02T07:00:00+01:00", "do": "sweep",
                      "expect": {"state": "in_default", "notifications": {"repayment_reminder": 1,
                                                                          "default_notice": 2}}})
    result = run_scenario({"name": "t", "programme": doc["programme"], "steps": steps})
    assert result["expectations"]["failures"] == []


def test_only_the_head_writes_off_a_loan_in_default_and_the_outstanding_is_recorded(database_url):
    doc = _doc("golden-13-pdl-zero-rate-loan-default.json")
    steps = copy.deepcopy(doc["steps"][:11])
    steps += [
        {"at": "2022-11-10T10:00:00+01:00", "as": "finance", "do": "write_off", "with": {"reason": "liquidation"},
         "expect": {"refused": "not_allowed"}},
        {"at": "2022-11-10T11:00:00+01:00", "as": "head", "do": "write_off",
         "with": {"reason": "Liquidation judiciaire prononcée le 08/11/2022"}, "expect": {"state": "closed"}},
    ]
    result = run_scenario({"name": "t", "programme": doc["programme"], "steps": steps}, database_url=database_url)
    assert result["expectations"]["failures"] == []
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    with factory() as uow:
        dossier = uow.session.scalars(select(m.Dossier)).one()
        assert str(dossier.written_off) == "93750.00"
    factory.engine.dispose()


def test_a_loan_dossier_exports_to_the_schema_and_its_pdf_says_the_figures_are_an_example(database_url):
    import io
    from datetime import datetime

    import jsonschema
    from pypdf import PdfReader

    from services.audit.export import export_dossier, schema
    from services.audit.pdf import render_pdf
    from services.clock import FrozenClock
    from services.queries import dossier_summary

    run_file(SCENARIOS / "pathways" / "golden-13-pdl-zero-rate-loan-default.json", database_url=database_url)
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    with factory() as uow:
        dossier_id = uow.session.scalar(select(m.Dossier.id))
        export = export_dossier(uow.session, dossier_id, clock=FrozenClock(datetime.fromisoformat("2023-01-05T10:00:00+01:00")))
        summary = dossier_summary(uow, dossier_id)
    factory.engine.dispose()
    jsonschema.validate(export, schema())
    assert export["dossier"]["example_notice"] == "Programme d'exemple — chiffres non officiels"
    assert export["replay"]["state"]["loan"]["repaid"] == "100000.00"
    assert summary["avertissement"] == "Programme d'exemple — chiffres non officiels"
    assert summary["call"] == "AMI-2021-1" and summary["loan"]["outstanding"] == "0.00"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(export))).pages)
    assert "Programme d'exemple — chiffres non officiels" in text


def test_a_craft_production_company_is_eligible_in_pays_de_la_loire_but_not_in_occitanie():
    doc = _doc("golden-14-pdl-calls-and-lines.json")
    steps = copy.deepcopy(doc["steps"][1:4])
    steps[0]["with"]["company"]["activity"] = "craft_production"
    result = run_scenario({"name": "t", "programme": doc["programme"], "steps": steps})
    assert result["expectations"]["failures"] == [] and result["final"]["state"] == "instruction"
    occitanie = json.loads((SCENARIOS / "golden" / "golden-1-sme-full-life.json").read_text("utf-8"))
    steps = copy.deepcopy(occitanie["steps"][:3])
    steps[0]["with"]["company"]["activity"] = "craft_production"
    steps[2]["expect"] = {"refused": "activity"}
    assert run_scenario({"name": "t", "programme": "occitanie-prif", "steps": steps})["expectations"]["failures"] == []


def test_a_final_claim_justifying_less_lists_the_combined_cap_cut_of_the_subsidy(database_url):
    """SPEC §11.2: at the final claim every cap of the line applies again, the combined cap
    counting the voted loan; a cut is never silent (SCENARIOS.md: listed under `adjustments`).
    Voted 30,000 of subsidy beside a 150,000 loan; 260,000 justified: 60 % × 260,000 − 150,000 =
    6,000 paid, so 24,000 cut by `subsidy_cap` — and the vote's own cuts are not listed twice."""
    doc = json.loads((SCENARIOS / "audited-pathways" / "pathway-05-line2-final-claim-combined-cap-with-voted-loan.json")
                     .read_text("utf-8"))
    result = run_scenario(doc, database_url=database_url)
    assert result["expectations"]["failed"] == 0, result["expectations"]["failures"]
    assert result["final"]["paid"] == "6000.00"
    cuts = [a for a in result["final"]["adjustments"] if a["rule"] == "subsidy_cap"]
    assert cuts == [{"rule": "subsidy_cap", "phase": 2, "base": "aid", "amount": "24000.00"}]
