"""The next deadline the queue sorts on is stored on each dossier (`services.deadlines`): after
every step of every golden and pathway scenario, and over the whole demo, it is the deadline
recomputed from the dossier's own rows."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from db import models as m
from rules.calendar import paris_date
from rules.loans import loan_status
from services.demo import DEMO_NOW, load_demo
from services.loans import plan_of, repayments_of
from services.scenario import run_scenario
from services.sweep import sweep
from tests.helpers import COMPANY, SCENARIOS, Life

SCENARIO_FILES = sorted((SCENARIOS / "golden").glob("*.json")) + sorted((SCENARIOS / "pathways").glob("*.json"))


def recomputed(session, today: date) -> dict[str, tuple]:
    """Every dossier's next deadline, from its rows, without the stored columns' code."""
    requests: dict[int, list[date]] = {}
    for r in session.scalars(select(m.DocumentRequest).where(m.DocumentRequest.status == "open")):
        requests.setdefault(r.dossier_id, []).append(r.lapse_on)
    sessions = list(session.scalars(select(m.CouncilSession)))
    out = {}
    for d in session.scalars(select(m.Dossier)):
        candidates = [(day, "documents") for day in requests.get(d.id, [])]
        if d.status == "action_plan":
            agendas = [s.agenda_closes_on for s in sessions if s.programme_id == d.programme_id
                       and s.agenda_closes_on >= today]
            if agendas:
                candidates.append((min(agendas), "agenda"))
        if d.status == "ready_for_vote" and d.session_id:
            candidates.append(([s.session_date for s in sessions if s.id == d.session_id][0], "session"))
        if d.status in ("approved", "in_payment") and d.payment_deadline_on:
            candidates.append((d.payment_deadline_on, "payment"))
        if d.status in ("in_repayment", "in_default") and d.loan is not None:
            # the loan's oldest unpaid instalment, replayed from the schedule and the repayments
            due = loan_status(plan_of(d), repayments_of(session, d.id)).next_due
            if due is not None:
                candidates.append((due.due_on, "repayment"))
        out[d.reference] = min(candidates) if candidates else (None, None)
    return out


def stored(session) -> dict[str, tuple]:
    return {d.reference: (d.next_deadline_at, d.next_deadline_kind) for d in session.scalars(select(m.Dossier))}


def assert_stored_deadlines_are_right(uow_factory, today: date, where: str = "") -> None:
    with uow_factory() as uow:
        expected, found = recomputed(uow.session, today), stored(uow.session)
    wrong = {ref: (found[ref], expected[ref]) for ref in expected if found[ref] != expected[ref]}
    assert not wrong, f"{where}: stored != recomputed: {wrong}"


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_after_every_scenario_step_the_stored_next_deadline_is_the_recomputed_one(path, database_url):
    doc = json.loads(path.read_text(encoding="utf-8"))
    steps = iter(range(len(doc["steps"])))

    def check(uow_factory, clock):
        index = next(steps)
        assert_stored_deadlines_are_right(uow_factory, paris_date(clock.now()), f"{path.stem} steps[{index}]")

    result = run_scenario(doc, database_url=database_url, after_step=check)
    assert result["expectations"]["failed"] == 0, result["expectations"]["failures"]
    assert next(steps, None) is None  # every step was checked


def test_the_golden_scenarios_meet_every_kind_of_deadline(database_url):
    kinds = set()

    def collect(uow_factory, clock):
        with uow_factory() as uow:
            kinds.update(uow.session.scalars(select(m.Dossier.next_deadline_kind)))

    for path in SCENARIO_FILES:
        run_scenario(json.loads(path.read_text(encoding="utf-8")), database_url=database_url, after_step=collect)
    assert {"documents", "agenda", "session", "payment", "repayment"} <= kinds


def test_over_the_demo_the_stored_next_deadline_is_the_recomputed_one(uow_factory):
    load_demo(uow_factory, dossiers=60)
    assert_stored_deadlines_are_right(uow_factory, paris_date(DEMO_NOW), "demo")
    with uow_factory() as uow:
        kinds = set(uow.session.scalars(select(m.Dossier.next_deadline_kind)))
    assert {"documents", "payment"} <= kinds


def _to_action_plan(life):
    life.at("2021-02-01T10:00:00+01:00").submit(de_minimis_prior=[])
    life.at("2021-02-03T09:00:00+01:00").do("take_for_review", "officer")
    life.at("2021-02-05T09:00:00+01:00").do("declare_eligible", "officer", consultant="Cabinet Midi Conseil",
                                            phase1={"days": 5, "day_rate": "1100.00"})
    life.at("2021-03-12T09:00:00+01:00").do("provide_documents", "consultant", kinds=["diagnostic_report"])
    life.at("2021-03-15T09:00:00+01:00").do("accept_diagnostic", "officer")
    life.at("2021-03-20T09:00:00+01:00").do("provide_documents", "applicant", kinds=["action_plan", "phase2_quote"])
    life.at("2021-03-20T10:00:00+01:00").do("submit_action_plan", "applicant", phase2={"days": 20, "day_rate": "1300.00"})
    return life


def test_a_new_session_gives_the_waiting_action_plans_its_agenda_and_the_sweep_moves_it_once_closed(
        uow_factory, clock, actors):
    waiting = _to_action_plan(Life(uow_factory, clock, actors))
    assert waiting.dossier().next_deadline_kind is None  # no session yet
    Life(uow_factory, clock, actors).to_approved(company={**COMPANY, "siren": "552100554", "name": "Forges de l'Adour"})
    # the other dossier's proposal opened CP-2021-04: its agenda closing is the waiting one's deadline
    with uow_factory() as uow:
        agenda = uow.session.scalar(select(m.CouncilSession.agenda_closes_on).where(m.CouncilSession.code == "CP-2021-04"))
    assert (waiting.dossier().next_deadline_at, waiting.dossier().next_deadline_kind) == (agenda, "agenda")
    clock.set(datetime(2021, 4, 20, 8, tzinfo=timezone.utc))
    sweep(uow_factory=uow_factory, clock=clock)
    assert_stored_deadlines_are_right(uow_factory, date(2021, 4, 20), "after the agenda closed and the sweep")
    assert waiting.dossier().next_deadline_kind is None
