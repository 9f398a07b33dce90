"""Replay: a dossier rebuilt from its events alone as it stood at any instant, its rules
re-computed with the programme version it records, and compared with the stored state."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from db import models as m
from programmes import FILES, Catalogue
from services.audit.replay import diff, replay_dossier, stored_state
from services.demo import load_demo
from tests.audit_scenarios import play

ROOT = Path(__file__).resolve().parents[1]
EVENTS = m.Event.__table__


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


CANDIDACY_DOCUMENTS = 7  # the Occitanie candidacy list, handed in with the candidacy

# Golden case 1 at ten instants: (instant, state, aid, net paid, documents, claims, what else)
GOLDEN_1 = [
    ("2021-02-01T10:00:00+01:00", "submitted", None, "0.00", CANDIDACY_DOCUMENTS, 0, {}),
    ("2021-02-04T12:00:00+01:00", "eligibility_review", None, "0.00", CANDIDACY_DOCUMENTS, 0,
     {"officer": "officer (scénario)"}),
    # From the eligibility decision the amounts are estimated (phase 1 only, no de minimis yet).
    ("2021-02-10T12:00:00+01:00", "diagnostic", {"phase1": "5500.00", "total": "5500.00"}, "0.00", CANDIDACY_DOCUMENTS, 0,
     {"size_class": "sme", "consultant": "Cabinet Midi Conseil", "quotes": {"1": {"days": 5, "day_rate": "1100.00"}}}),
    ("2021-03-13T12:00:00+01:00", "diagnostic", {"phase1": "5500.00", "total": "5500.00"}, "0.00", CANDIDACY_DOCUMENTS + 1, 0, {}),
    ("2021-03-21T12:00:00+01:00", "action_plan", {"phase1": "5500.00", "total": "5500.00"}, "0.00", CANDIDACY_DOCUMENTS + 3, 0,
     {"quotes": {"1": {"days": 5, "day_rate": "1100.00"}, "2": {"days": 20, "day_rate": "1300.00"}}}),
    ("2021-03-30T12:00:00+02:00", "ready_for_vote", {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"},
     "0.00", CANDIDACY_DOCUMENTS + 3, 0, {"session": "CP-2021-04"}),
    ("2021-04-15T12:00:00+02:00", "approved", {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"},
     "0.00", CANDIDACY_DOCUMENTS + 3, 0, {"payment_deadline_on": "2023-06-30"}),
    ("2021-04-21T12:00:00+02:00", "approved", {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"},
     "0.00", CANDIDACY_DOCUMENTS + 3, 1, {}),
    ("2021-05-06T12:00:00+02:00", "in_payment", {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"},
     "13900.00", CANDIDACY_DOCUMENTS + 3, 2, {}),
    ("2021-12-01T12:00:00+01:00", "closed", {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"},
     "16300.00", CANDIDACY_DOCUMENTS + 3, 3, {}),
]


@pytest.fixture
def golden_1(uow_factory):
    return play(uow_factory, "golden-1-sme-full-life")


@pytest.mark.parametrize("instant,status,aid,paid,documents,claims,extra", GOLDEN_1, ids=[g[0][:10] for g in GOLDEN_1])
def test_golden_case_1_replayed_at_an_instant_gives_the_state_and_figures_of_that_day(
        uow_factory, golden_1, instant, status, aid, paid, documents, claims, extra):
    with uow_factory() as uow:
        r = replay_dossier(uow.session, golden_1, at=at(instant))
    s = r.state
    assert s["status"] == status
    assert s["amounts"]["aid"] == aid
    assert s["amounts"]["net_paid"] == paid
    assert len(s["documents"]) == documents
    assert len(s["claims"]) == claims
    for key, value in extra.items():
        assert s[key] == value
    assert r.ok, [d.as_dict() for d in r.discrepancies]
    assert r.checks > 0


def test_golden_case_1_replayed_to_its_end_gives_the_voted_paid_and_cancelled_amounts(uow_factory, golden_1):
    with uow_factory() as uow:
        r = replay_dossier(uow.session, golden_1)
        differences = diff(r, stored_state(uow.session, golden_1))
    a = r.state["amounts"]
    assert (a["aid_total"], a["paid_total"], a["net_paid"], a["cancelled_remainder"]) == \
        ("17500.00", "16300.00", "16300.00", "1200.00")
    assert [p["amount"] for p in r.state["payments"]] == ["5500.00", "8400.00", "2400.00"]
    assert r.state["vote"]["deliberation"] == "CP/2021-04/17"
    # The refused 9,000 € advance never happened: only the 8,400 € one is in the history.
    assert [c["amount_claimed"] for c in r.state["claims"] if c["kind"] == "advance"] == ["8400.00"]
    assert r.events_applied == 15 and r.ok
    assert differences == []


def test_an_open_document_request_is_replayed_with_its_deadlines(uow_factory):
    dossier = play(uow_factory, "golden-9-document-chase-lapse")
    with uow_factory() as uow:
        before = replay_dossier(uow.session, dossier, at=at("2021-03-09T12:00:00+01:00"))
        after = replay_dossier(uow.session, dossier)
        assert diff(after, stored_state(uow.session, dossier)) == []
    [request] = before.state["open_requests"]
    assert request["kinds"] == ["tax_certificate"]
    assert request["lapse_on"] == "2021-03-31"
    assert request["reminders_sent"] == 1
    assert request["next_reminder"]["after_days"] == 14
    assert after.state["status"] == "lapsed" and after.state["open_requests"] == []
    assert after.state["document_requests"][0]["status"] == "lapsed"
    assert after.ok, [d.as_dict() for d in after.discrepancies]


def test_replay_at_the_present_is_identical_to_the_stored_state_for_every_demo_dossier(uow_factory):
    report = load_demo(uow_factory, dossiers=36, seed=11)
    with uow_factory() as uow:
        ids = uow.session.scalars(select(m.Dossier.id).order_by(m.Dossier.id)).all()
        assert len(ids) == report["dossiers"]
        for did in ids:
            r = replay_dossier(uow.session, did)
            assert diff(r, stored_state(uow.session, did)) == [], did
            assert r.ok, (did, [d.as_dict() for d in r.discrepancies])


def test_a_voted_amount_that_the_rules_do_not_give_is_flagged_at_its_event(uow_factory, golden_1):
    with uow_factory.engine.begin() as conn:
        row = conn.execute(select(EVENTS).where(EVENTS.c.dossier_id == golden_1, EVENTS.c.command == "record_vote")).one()
        voted = json.loads(json.dumps(row.data["voted"]))
        voted["lines"][1]["aid"] = "13000.00"
        voted["total"] = "18500.00"
        conn.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(data={**row.data, "voted": voted}))
    with uow_factory() as uow:
        r = replay_dossier(uow.session, golden_1)
    flagged = {(d.seq, d.check) for d in r.discrepancies}
    assert (row.seq, "voted.total") in flagged
    [total] = [d for d in r.discrepancies if d.check == "voted.total"]
    assert (total.recorded, total.recomputed) == ("18500.00", "17500.00")


def test_a_payment_above_what_the_claim_justifies_is_flagged(uow_factory, golden_1):
    with uow_factory.engine.begin() as conn:
        row = conn.execute(select(EVENTS).where(EVENTS.c.dossier_id == golden_1, EVENTS.c.seq == 15)).one()
        conn.execute(update(EVENTS).where(EVENTS.c.id == row.id).values(data={**row.data, "amount": "3600.00"}))
    with uow_factory() as uow:
        r = replay_dossier(uow.session, golden_1)
    amounts = [d for d in r.discrepancies if d.check == "pay.amount"]
    assert [(d.seq, d.recorded, d.recomputed) for d in amounts] == [(15, "3600.00", "2400.00")]


def test_the_rules_replayed_are_those_of_the_recorded_programme_version(uow_factory, golden_1, tmp_path):
    # A version 2 of the programme lowers the day-rate cap; the dossier was decided under v1.
    for path in FILES.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    v1 = (FILES / "occitanie-prif.v1.toml").read_text("utf-8")
    (tmp_path / "occitanie-prif.v2.toml").write_text(
        v1.replace("version = 1", "version = 2", 1).replace('day_rate_cap = "1200.00"', 'day_rate_cap = "900.00"', 1),
        "utf-8")
    catalogue = Catalogue(tmp_path)
    assert catalogue.latest("occitanie-prif").money.day_rate_cap == 900
    with uow_factory() as uow:
        r = replay_dossier(uow.session, golden_1, catalogue=catalogue)
    assert r.ok and r.state["amounts"]["aid_total"] == "17500.00"
    assert r.state["programme"] == "occitanie-prif@v1"


def usine(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "USINE_DATABASE_URL": database_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}
    env.pop("USINE_CLOCK_START", None)
    return subprocess.run([sys.executable, "-m", "cli.main", "audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_usine_audit_replay_prints_the_dossier_at_an_instant_and_diffs_with_the_stored_state(
        uow_factory, golden_1, database_url):
    past = usine(database_url, "replay", str(golden_1), "--at", "2021-05-06T12:00:00+02:00")
    assert past.returncode == 0, past.stderr
    out = json.loads(past.stdout)
    assert out["state"]["status"] == "in_payment" and out["state"]["amounts"]["net_paid"] == "13900.00"
    now = usine(database_url, "replay", "OCC-2021-" + f"{golden_1:06d}", "--diff")
    assert now.returncode == 0, now.stdout[-2000:]
    assert json.loads(now.stdout)["diff"]["identical"] is True
    bad = usine(database_url, "replay", str(golden_1), "--at", "2021-05-06 12:00")
    assert bad.returncode == 2 and "--at" in bad.stderr


def test_an_audit_replay_before_the_first_event_or_a_past_diff_is_refused_by_name(uow_factory, golden_1):
    from rules.errors import InvalidInput, RuleViolation
    from services.audit.replay import audit_replay

    with uow_factory() as uow:
        with pytest.raises(RuleViolation) as before:
            audit_replay(uow.session, golden_1, at=at("2021-01-31T23:59:00+01:00"))
        with pytest.raises(InvalidInput) as past_diff:
            audit_replay(uow.session, golden_1, at=at("2021-11-19T09:59:59+01:00"), compare=True)
        result, differences = audit_replay(uow.session, golden_1, at=at("2021-11-19T10:00:00+01:00"), compare=True)
        past, none = audit_replay(uow.session, golden_1, at=at("2021-05-06T12:00:00+02:00"))
    assert (before.value.rule, before.value.field) == ("before_first_event", "at")
    assert "01/02/2021 10:00" in before.value.message and "31/01/2021 23:59" in before.value.message
    assert past_diff.value.field == "diff" and "état enregistré actuel" in past_diff.value.message
    assert differences == [] and result.events_applied == 15
    assert none is None and past.state["status"] == "in_payment"


def test_usine_audit_replay_refuses_a_past_diff_and_an_instant_before_the_dossier(uow_factory, golden_1, database_url):
    past_diff = usine(database_url, "replay", str(golden_1), "--at", "2021-05-06T12:00:00+02:00", "--diff")
    assert past_diff.returncode == 2, (past_diff.stdout[-500:], past_diff.stderr)
    assert past_diff.stdout == ""
    message = " ".join(past_diff.stderr.split())
    assert "--diff compare le dossier rejoué avec l'état enregistré actuel" in message
    assert "ne peut être combiné avec un instant passé (--at = 06/05/2021 12:00" in message
    at_last = usine(database_url, "replay", str(golden_1), "--at", "2021-11-19T10:00:00+01:00", "--diff")
    assert at_last.returncode == 0, at_last.stdout[-2000:]
    assert json.loads(at_last.stdout)["diff"]["identical"] is True
    before = usine(database_url, "replay", str(golden_1), "--at", "2020-12-31T12:00:00+01:00")
    assert before.returncode == 1 and before.stdout == ""
    message = " ".join(before.stderr.split())
    assert "n'existait pas encore le 31/12/2020 12:00" in message and "date du 01/02/2021 10:00" in message
