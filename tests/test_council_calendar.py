"""The council calendar: the head plans sessions ahead on working days, proposals go to a planned
session, and a vote is never recorded before its session's day (`session_not_held`) — nothing
written, no letter announcing a decision the council has not yet taken."""
from datetime import date

import pytest
from sqlalchemy import select

from db import models as m
from rules.council import check_session_held, check_session_plan
from rules.errors import NotAllowed, RuleViolation
from services.audit.replay import replay_dossier
from services.council import plan_session
from tests.helpers import Life, row_counts


@pytest.fixture
def life(uow_factory, clock, actors):
    return Life(uow_factory, clock, actors)


def _plan(life, code="CP-2021-04-22", session_date="2021-04-22", agenda_closes_on="2021-04-15", role="head",
          programme="occitanie-prif"):
    with life.uow_factory() as uow:
        return plan_session(uow=uow, clock=life.clock, actor=life.actors[role], code=code, programme_id=programme,
                            session_date=session_date, agenda_closes_on=agenda_closes_on)


def _to_action_plan(life):
    life.at("2021-02-01T10:00:00+01:00").submit()
    life.at("2021-02-03T09:00:00+01:00").do("take_for_review", "officer")
    life.at("2021-02-05T09:00:00+01:00").do("declare_eligible", "officer", consultant="Cabinet Midi Conseil",
                                            phase1={"days": 5, "day_rate": "1100.00"})
    life.at("2021-03-12T09:00:00+01:00").do("provide_documents", "consultant", kinds=["diagnostic_report"])
    life.at("2021-03-15T09:00:00+01:00").do("accept_diagnostic", "officer")
    life.at("2021-03-20T09:00:00+01:00").do("provide_documents", "applicant", kinds=["action_plan", "phase2_quote"])
    life.at("2021-03-20T10:00:00+01:00").do("submit_action_plan", "applicant", phase2={"days": 20, "day_rate": "1300.00"})


@pytest.mark.parametrize("session_date, closes, rule, field", [
    ("2021-04-25", "2021-04-16", "session_not_working_day", "session_date"),   # a Sunday
    ("2021-07-14", "2021-07-07", "session_not_working_day", "session_date"),   # Fête nationale
    ("2021-04-22", "2021-04-23", "agenda_after_session", "agenda_closes_on"),  # closes after the session
    ("2021-04-22", "2021-04-22", "agenda_after_session", "agenda_closes_on"),  # … or on its day
    ("2021-03-01", "2021-02-22", "session_in_past", "session_date"),           # not ahead
])
def test_a_session_planned_on_a_day_off_or_with_its_agenda_closing_late_is_refused_naming_the_field(
        life, uow_factory, session_date, closes, rule, field):
    life.at("2021-03-22T10:00:00+01:00")
    before = row_counts(uow_factory)
    with pytest.raises(RuleViolation) as refused:
        _plan(life, session_date=session_date, agenda_closes_on=closes)
    assert (refused.value.rule, refused.value.field) == (rule, field)
    assert row_counts(uow_factory) == before


def test_the_refusal_of_a_sunday_or_a_holiday_says_so_in_french():
    with pytest.raises(RuleViolation) as sunday:
        check_session_plan(date(2021, 4, 25), date(2021, 4, 16), date(2021, 3, 22))
    assert "dimanche 25/04/2021 est un week-end" in sunday.value.message
    with pytest.raises(RuleViolation) as holiday:
        check_session_plan(date(2021, 7, 14), date(2021, 7, 7), date(2021, 3, 22))
    assert "mercredi 14/07/2021 est un jour férié" in holiday.value.message


def test_only_the_head_plans_a_session_and_a_code_is_used_once(life, uow_factory):
    life.at("2021-03-22T10:00:00+01:00")
    with pytest.raises(NotAllowed):
        _plan(life, role="officer")
    planned = _plan(life)
    assert (planned.session_date, planned.agenda_closes_on, planned.planned_by) == (
        date(2021, 4, 22), date(2021, 4, 15), "Mme Roux, cheffe de service")
    with pytest.raises(RuleViolation) as again:
        _plan(life, session_date="2021-04-29", agenda_closes_on="2021-04-20")
    assert (again.value.rule, again.value.field) == ("session_code_taken", "code")


def test_a_proposal_goes_to_the_planned_session_and_takes_its_dates(life, uow_factory):
    _to_action_plan(life)
    life.at("2021-03-22T10:00:00+01:00")
    _plan(life)
    life.at("2021-03-25T09:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-04-22")
    with uow_factory() as uow:
        event = uow.session.scalars(select(m.Event).where(m.Event.command == "propose_for_vote")).one()
        assert event.data["session_date"] == "2021-04-22"


def test_a_vote_before_its_sessions_day_is_refused_and_writes_nothing_no_letter_no_event(life, uow_factory):
    _to_action_plan(life)
    life.at("2021-03-22T10:00:00+01:00")
    _plan(life)
    life.at("2021-03-25T09:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-04-22")
    before = row_counts(uow_factory)
    with pytest.raises(RuleViolation) as early:
        life.at("2021-04-15T14:00:00+02:00").do("record_vote", "head", session="CP-2021-04-22", outcome="approved",
                                                deliberation="CP/2021-04/17")
    assert (early.value.rule, early.value.field) == ("session_not_held", "session")
    assert "se tient le 22/04/2021" in early.value.message
    assert row_counts(uow_factory) == before   # no event, no vote_result letter in the outbox
    with uow_factory() as uow:
        assert not uow.session.scalars(select(m.Notification).where(m.Notification.kind == "vote_result")).all()


def test_a_vote_on_its_sessions_day_passes_and_the_replay_agrees(life, uow_factory):
    _to_action_plan(life)
    life.at("2021-03-22T10:00:00+01:00")
    _plan(life)
    life.at("2021-03-25T09:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-04-22")
    out = life.at("2021-04-22T09:00:00+02:00").do("record_vote", "head", session="CP-2021-04-22",
                                                  outcome="approved", deliberation="CP/2021-04/17")
    assert out.state == "approved"
    with uow_factory() as uow:
        replay = replay_dossier(uow.session, life.dossier_id)
    assert not [x for x in replay.discrepancies if x.check == "session_not_held"]


def test_an_adjournment_too_waits_for_the_sessions_day(life, uow_factory):
    _to_action_plan(life)
    life.at("2021-03-22T10:00:00+01:00")
    _plan(life)
    life.at("2021-03-25T09:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-04-22")
    with pytest.raises(RuleViolation) as early:
        life.at("2021-04-21T17:00:00+02:00").do("record_vote", "head", session="CP-2021-04-22", outcome="adjourned")
    assert early.value.rule == "session_not_held"
    assert check_session_held("CP-2021-04-22", date(2021, 4, 22), date(2021, 4, 23)) is None


def test_the_replay_flags_a_vote_recorded_before_its_sessions_day(life, uow_factory, monkeypatch):
    """A database written before the rule existed: the auditor's replay names the early vote."""
    _to_action_plan(life)
    life.at("2021-03-25T09:00:00+01:00").do("propose_for_vote", "officer", session="CP-2021-04")  # sits 08/04
    monkeypatch.setattr("services.commands.council.check_session_held", lambda *a: None)
    life.at("2021-04-01T14:00:00+02:00").do("record_vote", "head", session="CP-2021-04", outcome="approved",
                                            deliberation="CP/2021-04/17")
    with uow_factory() as uow:
        replay = replay_dossier(uow.session, life.dossier_id)
    early = [x for x in replay.discrepancies if x.check == "session_not_held"]
    assert len(early) == 1 and "avant le jour de la séance CP-2021-04 (08/04/2021)" in early[0].detail
