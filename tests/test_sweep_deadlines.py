"""Document chasing by the sweep: reminders on their (working) day and only once, the lapse at
J+30, set-based whatever the number of dossiers, safe when killed half-way or run twice at once."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import event

from services.clock import FrozenClock
from services.sweep import reminder_windows, sweep
from tests.sweep_support import (
    count_notifications,
    dossier,
    dossiers_with_open_request,
    events,
    every_history_verifies,
    notifications,
)


def at(iso: str) -> FrozenClock:
    return FrozenClock(datetime.fromisoformat(iso))


def test_the_first_reminder_goes_out_seven_days_after_the_request_and_not_before(uow_factory, clock, actors):
    dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-01T10:00:00+01:00")
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-07T06:00:00+01:00")).reminders == 0
    report = sweep(uow_factory=uow_factory, clock=at("2021-03-08T06:00:00+01:00"))
    assert report.reminders == 1
    [reminder] = notifications(uow_factory, "documents_reminder")
    assert reminder.subject.endswith("Relance : pièces manquantes à transmettre avant le 31 mars 2021")
    assert "Première relance (J+7)." in reminder.body_text
    assert "  - attestation de régularité fiscale" in reminder.body_text


def test_the_same_sweep_run_again_the_same_day_sends_nothing_twice(uow_factory, clock, actors):
    dossiers_with_open_request(uow_factory, clock, actors, count=3, requested_at="2021-03-01T10:00:00+01:00")
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-08T06:00:00+01:00")).reminders == 3
    again = sweep(uow_factory=uow_factory, clock=at("2021-03-08T18:00:00+01:00"))
    assert (again.reminders, again.final_notices, again.lapsed) == (0, 0, 0)
    assert count_notifications(uow_factory, "documents_reminder") == 3


def test_a_reminder_due_on_a_saturday_waits_for_monday(uow_factory, clock, actors):
    # Asked on Saturday 6 March 2021 (an officer catching up): J+7 is Saturday 13 March.
    dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-06T10:00:00+01:00")
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-13T06:00:00+01:00")).reminders == 0
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-14T06:00:00+01:00")).reminders == 0
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-15T06:00:00+01:00")).reminders == 1


def test_a_reminder_due_on_easter_monday_goes_out_the_next_day(uow_factory, clock, actors):
    # Requested Monday 29 March 2021: J+7 = Monday 5 April 2021, Easter Monday (a public holiday).
    dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-29T10:00:00+02:00")
    assert sweep(uow_factory=uow_factory, clock=at("2021-04-05T06:00:00+02:00")).reminders == 0
    assert sweep(uow_factory=uow_factory, clock=at("2021-04-06T06:00:00+02:00")).reminders == 1


def test_after_an_outage_only_the_latest_step_due_is_sent(uow_factory, clock, actors):
    dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-01T10:00:00+01:00")
    # No sweep ran for three weeks: the applicant gets the final notice, not three letters.
    report = sweep(uow_factory=uow_factory, clock=at("2021-03-23T06:00:00+01:00"))
    assert (report.reminders, report.final_notices) == (0, 1)
    assert Counter(n.kind for n in notifications(uow_factory)) == {
        "candidacy_received": 1, "documents_requested": 1, "documents_final_notice": 1}


def test_the_dossier_lapses_on_day_thirty_with_its_letter_and_its_requests_closed(uow_factory, clock, actors):
    [dossier_id] = dossiers_with_open_request(uow_factory, clock, actors, count=1,
                                              requested_at="2021-03-01T10:00:00+01:00")
    assert sweep(uow_factory=uow_factory, clock=at("2021-03-30T06:00:00+02:00")).lapsed == 0
    report = sweep(uow_factory=uow_factory, clock=at("2021-03-31T06:00:00+02:00"))
    assert report.lapsed == 1
    lapsed = dossier(uow_factory, dossier_id)
    assert lapsed.status == "lapsed" and lapsed.closed_at is not None
    [letter] = notifications(uow_factory, "dossier_lapsed")
    assert "est déclaré caduc depuis le 31 mars 2021" in letter.body_text
    assert "pièces demandées non fournies au 31/03/2021" in letter.body_text
    last = events(uow_factory, dossier_id)[-1]
    assert (last.command, last.state_before, last.state_after, last.actor) == ("lapse", "eligibility_review", "lapsed", "usine")
    assert sweep(uow_factory=uow_factory, clock=at("2021-04-01T06:00:00+02:00")).lapsed == 0
    assert every_history_verifies(uow_factory)


def test_documents_provided_in_time_stop_the_chase(uow_factory, clock, actors):
    from services import commands
    from tests.sweep_support import run

    [dossier_id] = dossiers_with_open_request(uow_factory, clock, actors, count=1,
                                              requested_at="2021-03-01T10:00:00+01:00")
    run(uow_factory, clock, "2021-03-10T10:00:00+01:00", commands.provide_documents, actors["applicant"],
        dossier_id=dossier_id, kinds=["tax_certificate"])
    for day in ("2021-03-15", "2021-03-22", "2021-03-31"):
        report = sweep(uow_factory=uow_factory, clock=at(f"{day}T06:00:00+01:00"))
        assert (report.reminders, report.final_notices, report.lapsed) == (0, 0, 0)
    assert dossier(uow_factory, dossier_id).status == "eligibility_review"


def test_reminder_windows_name_one_step_per_request_day(uow_factory):
    programme = uow_factory().catalogue.get("occitanie-prif", 1)
    windows = reminder_windows(programme, datetime.fromisoformat("2021-03-22T06:00:00+01:00").date())
    assert [(days, kind) for days, kind, _hi, _lo in windows] == [
        (7, "documents_reminder"), (14, "documents_reminder"), (21, "documents_final_notice")]
    assert [str(hi) for _d, _k, hi, _lo in windows] == ["2021-03-15", "2021-03-08", "2021-03-01"]


def _count_statements(engine):
    counter = {"n": 0}

    def count(conn, cursor, statement, parameters, context, executemany):
        counter["n"] += 1
    event.listen(engine, "before_cursor_execute", count)
    return counter, lambda: event.remove(engine, "before_cursor_execute", count)


def test_a_sweep_runs_the_same_number_of_statements_for_3_or_12_due_dossiers(uow_factory, clock, actors):
    dossiers_with_open_request(uow_factory, clock, actors, count=3, requested_at="2021-03-01T10:00:00+01:00")
    counter, stop = _count_statements(uow_factory.engine)
    try:
        small = sweep(uow_factory=uow_factory, clock=at("2021-03-08T06:00:00+01:00"))
        small_count = counter["n"]
    finally:
        stop()
    dossiers_with_open_request(uow_factory, clock, actors, count=12, first=100,
                               requested_at="2021-03-02T10:00:00+01:00")
    counter, stop = _count_statements(uow_factory.engine)
    try:
        large = sweep(uow_factory=uow_factory, clock=at("2021-03-09T06:00:00+01:00"))
        large_count = counter["n"]
    finally:
        stop()
    assert (small.reminders, large.reminders) == (3, 12)
    assert small_count == large_count
    assert small.queries == large.queries


class SimulatedCrash(Exception):
    pass


def test_a_sweep_killed_half_way_and_run_again_finishes_with_nothing_lost_or_doubled(uow_factory, clock, actors):
    reminded = dossiers_with_open_request(uow_factory, clock, actors, count=5, first=1,
                                          requested_at="2021-03-24T10:00:00+01:00")
    lapsing = dossiers_with_open_request(uow_factory, clock, actors, count=3, first=50,
                                         requested_at="2021-03-01T10:00:00+01:00")
    instant = "2021-03-31T06:00:00+02:00"   # J+7 of the first ones, J+30 of the others
    seen = []

    def killed_at_the_sixth_item(what: str) -> None:
        seen.append(what)
        if len(seen) == 6:
            raise SimulatedCrash()

    with pytest.raises(SimulatedCrash):
        sweep(uow_factory=uow_factory, clock=at(instant), batch_size=2, on_item=killed_at_the_sixth_item)
    # Batches of two: the reminders (2 + 2 + 1) were committed, the first lapse batch was not.
    assert count_notifications(uow_factory, "documents_reminder") == 5
    assert count_notifications(uow_factory, "dossier_lapsed") == 0

    report = sweep(uow_factory=uow_factory, clock=at(instant), batch_size=2)
    assert (report.reminders, report.lapsed) == (0, 3)
    assert count_notifications(uow_factory, "documents_reminder") == 5
    assert count_notifications(uow_factory, "dossier_lapsed") == 3
    assert all(dossier(uow_factory, i).status == "lapsed" for i in lapsing)
    assert all([e.command for e in events(uow_factory, i)].count("remind") == 1 for i in reminded)
    keys = [n.dedupe_key for n in notifications(uow_factory)]
    assert len(keys) == len(set(keys))
    assert every_history_verifies(uow_factory)


def test_two_sweeps_running_at_once_send_each_letter_once(uow_factory, clock, actors):
    reminded = dossiers_with_open_request(uow_factory, clock, actors, count=12, first=1,
                                          requested_at="2021-03-24T10:00:00+01:00")
    lapsing = dossiers_with_open_request(uow_factory, clock, actors, count=6, first=50,
                                         requested_at="2021-03-01T10:00:00+01:00")
    start = threading.Barrier(2)
    reports, failures = [], []

    def one_sweep():
        try:
            start.wait()
            reports.append(sweep(uow_factory=uow_factory, clock=at("2021-03-31T06:00:00+02:00"), batch_size=3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=one_sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    assert sum(r.reminders for r in reports) == 12
    assert sum(r.lapsed for r in reports) == 6
    assert all(not r.errors for r in reports)
    assert count_notifications(uow_factory, "documents_reminder") == 12
    assert count_notifications(uow_factory, "dossier_lapsed") == 6
    assert all([e.command for e in events(uow_factory, i)].count("remind") == 1 for i in reminded)
    assert all([e.command for e in events(uow_factory, i)].count("lapse") == 1 for i in lapsing)
    assert every_history_verifies(uow_factory)
