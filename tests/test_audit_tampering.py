"""Tampering with the database directly — SQL UPDATE, DELETE, INSERT, reordering on the events
table, a whole dossier deleted — is detected by the audit and named: which dossier, which
event, what was done."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text, update

from db import models as m
from db.models_audit import AuditAnchor, AuditAnchorHead
from services.audit.anchors import AnchorRefused, anchor
from services.audit.verify import verify_database, verify_dossier
from services.clock import FrozenClock
from services.events import event_hash
from tests.audit_scenarios import play

EVENTS = m.Event.__table__
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def history(uow_factory):
    """Golden case 1 (a full life, 15 events) and golden case 9 (documents chased, lapsed),
    anchored once."""
    full = play(uow_factory, "golden-1-sme-full-life")
    lapsed = play(uow_factory, "golden-9-document-chase-lapse")
    anchor(uow_factory, FrozenClock(datetime(2022, 1, 1, 0, 15, tzinfo=timezone.utc)))
    with uow_factory() as uow:
        refs = {d.id: d.reference for d in uow.session.scalars(select(m.Dossier))}
    return {"full": full, "lapsed": lapsed, "refs": refs, "factory": uow_factory}


def sql(uow_factory, *statements) -> None:
    with uow_factory.engine.begin() as conn:
        for st in statements:
            conn.execute(st)


def event(uow_factory, dossier_id: int, seq: int):
    with uow_factory.engine.connect() as conn:
        return conn.execute(select(EVENTS).where(EVENTS.c.dossier_id == dossier_id, EVENTS.c.seq == seq)).one()


def rehash(row, **changes) -> str:
    values = {**row._mapping, **changes}
    return event_hash(dossier_reference=values["dossier_reference"], seq=values["seq"], at=values["at"],
                      actor=values["actor"], role=values["role"], command=values["command"],
                      state_before=values["state_before"], state_after=values["state_after"],
                      programme=values["programme"], data=values["data"], reason=values["reason"],
                      prev_hash=values["prev_hash"])


def problems(uow_factory, **kwargs) -> set[tuple]:
    report = verify_database(uow_factory.engine, **kwargs)
    assert report.ok is (not report.problems)
    return {(p["dossier"], p["problem"], p["seq"]) for p in report.problems}


def test_an_untouched_history_verifies_clean_with_every_event_checked(history):
    report = verify_database(history["factory"].engine)
    assert report.ok, report.problems
    assert report.dossiers == 2
    assert report.events >= 15 + 5
    assert report.anchors["anchors"] == 1 and report.anchors["last"]["dossiers"] == 2


def test_an_event_whose_amount_was_updated_is_named_as_edited(history):
    f, full = history["factory"], history["full"]
    row = event(f, full, 11)
    assert row.command == "pay"
    sql(f, update(EVENTS).where(EVENTS.c.id == row.id).values(data={**row.data, "amount": "7500.00"}))
    found = problems(f)
    ref = history["refs"][full]
    assert (ref, "edited", 11) in found
    # The forged amount also no longer gives the dossier's stored payments.
    assert (ref, "paid_differs", None) in found
    assert {p[0] for p in found} == {ref}


def test_an_event_edited_and_rehashed_is_named_by_the_broken_link_after_it(history):
    f, full = history["factory"], history["full"]
    row = event(f, full, 9)
    forged = {**row.data, "deliberation": "CP/2021-04/99"}
    sql(f, update(EVENTS).where(EVENTS.c.id == row.id).values(data=forged, hash=rehash(row, data=forged)))
    assert problems(f) == {(history["refs"][full], "edited", 9)}


def test_a_deleted_event_is_named_as_removed(history):
    f, full = history["factory"], history["full"]
    sql(f, text("DELETE FROM events WHERE dossier_id = :d AND seq = 5").bindparams(d=full))
    found = problems(f)
    assert (history["refs"][full], "removed", 5) in found
    assert all(p[1] == "removed" for p in found)


def test_the_last_event_deleted_is_named_from_the_dossier_row_and_the_anchor(history):
    f, full = history["factory"], history["full"]
    sql(f, text("DELETE FROM events WHERE dossier_id = :d AND seq = 15").bindparams(d=full))
    found = problems(f)
    ref = history["refs"][full]
    assert (ref, "removed", 15) in found  # anchored head gone, and the dossier changed after its last event
    assert (ref, "state_differs", None) in found and (ref, "paid_differs", None) in found


def test_a_forged_payment_appended_with_a_valid_hash_is_named_as_inserted(history):
    f, full = history["factory"], history["full"]
    last = event(f, full, 15)
    forged = {k: v for k, v in last._mapping.items() if k != "id"}
    forged.update(seq=16, at=last.at + timedelta(days=3), recorded_at=last.at + timedelta(days=3),
                  state_before="closed", state_after="closed", prev_hash=last.hash,
                  data={"amount": "5000.00", "claim_id": 3, "kind": "final", "paid_total": "21300.00",
                        "phase": 2, "recovery": None})
    forged["hash"] = event_hash(**{k: forged[k] for k in (
        "dossier_reference", "seq", "at", "actor", "role", "command", "state_before", "state_after", "programme",
        "data", "reason")}, prev_hash=forged["prev_hash"])
    sql(f, insert(EVENTS).values(**forged))
    found = problems(f)
    assert (history["refs"][full], "inserted", 16) in found


def test_an_event_slipped_into_the_middle_is_named_as_inserted_and_the_shift_as_reordered(history):
    f, full = history["factory"], history["full"]
    before = event(f, full, 6)
    sql(f, text("UPDATE events SET seq = -seq WHERE dossier_id = :d AND seq >= 7").bindparams(d=full),
        text("UPDATE events SET seq = 1 - seq WHERE dossier_id = :d AND seq < 0").bindparams(d=full))
    forged = {k: v for k, v in before._mapping.items() if k != "id"}
    forged.update(seq=7, command="review_document", at=before.at + timedelta(minutes=5), prev_hash=before.hash,
                  data={"document_id": 1, "kind": "kbis", "version": 1, "decision": "accepted"}, reason=None)
    forged["hash"] = event_hash(**{k: forged[k] for k in (
        "dossier_reference", "seq", "at", "actor", "role", "command", "state_before", "state_after", "programme",
        "data", "reason")}, prev_hash=forged["prev_hash"])
    sql(f, insert(EVENTS).values(**forged))
    report = verify_database(f.engine)
    ref = history["refs"][full]
    found = {(p["dossier"], p["problem"], p["seq"]) for p in report.problems}
    assert (ref, "inserted", 7) in found
    shifted = [p for p in report.problems if p["problem"] == "reordered"]
    assert len(shifted) == 1 and "n°8 à 16" in shifted[0]["detail"] and "n°7 à 15" in shifted[0]["detail"]


def test_two_swapped_events_are_named_as_reordered(history):
    f, full = history["factory"], history["full"]
    sql(f, text("UPDATE events SET seq = -3 WHERE dossier_id = :d AND seq = 3").bindparams(d=full),
        text("UPDATE events SET seq = 3 WHERE dossier_id = :d AND seq = 4").bindparams(d=full),
        text("UPDATE events SET seq = 4 WHERE dossier_id = :d AND seq = -3").bindparams(d=full))
    ref = history["refs"][full]
    assert problems(f) == {(ref, "reordered", 3), (ref, "reordered", 4)}


def _delete_dossier(f, dossier_id: int) -> None:
    sql(f, *(text(f"DELETE FROM {table} WHERE dossier_id = :d").bindparams(d=dossier_id) for table in (
        "events", "notifications", "documents", "document_requests", "de_minimis_aids", "payments",
        "recovery_orders", "payment_claims")),
        text("DELETE FROM dossiers WHERE id = :d").bindparams(d=dossier_id))


def test_a_whole_dossier_deleted_is_named_from_the_anchors(history):
    f, lapsed = history["factory"], history["lapsed"]
    _delete_dossier(f, lapsed)
    ref = history["refs"][lapsed]
    assert problems(f) == {(ref, "dossier_removed", None)}
    assert problems(f, dossier_id=lapsed) == {(ref, "dossier_removed", None)}
    with pytest.raises(AnchorRefused):  # anchoring now would launder the deletion
        anchor(f, FrozenClock(datetime(2022, 1, 2, tzinfo=timezone.utc)))


def test_a_dossier_deleted_with_its_anchor_rows_is_caught_by_the_anchor_digest_and_named_by_the_journal(
        uow_factory, tmp_path):
    journal = tmp_path / "anchors.jsonl"
    full = play(uow_factory, "golden-1-sme-full-life")
    lapsed = play(uow_factory, "golden-9-document-chase-lapse")
    anchor(uow_factory, FrozenClock(datetime(2022, 1, 1, tzinfo=timezone.utc)), journal=journal)
    with uow_factory() as uow:
        ref = uow.session.get(m.Dossier, lapsed).reference
    _delete_dossier(uow_factory, lapsed)
    sql(uow_factory, delete(AuditAnchorHead.__table__).where(AuditAnchorHead.dossier_reference == ref))
    assert problems(uow_factory) == {(None, "anchor_heads_altered", 1)}
    assert (ref, "dossier_removed", None) in problems(uow_factory, journal=str(journal))
    assert full is not None


def test_a_rewritten_anchor_chain_is_named(history):
    f = history["factory"]
    sql(f, update(AuditAnchor.__table__).where(AuditAnchor.seq == 1).values(dossiers=1))
    assert problems(f) == {(None, "anchor_edited", 1)}


def test_a_whole_history_rehashed_after_an_edit_is_named_by_the_anchor(history):
    f, full = history["factory"], history["full"]
    prev = None
    with f.engine.connect() as conn:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.dossier_id == full).order_by(EVENTS.c.seq)).all()
    statements = []
    for row in rows:
        data = {**row.data, "officer": "Quelqu'un d'autre"} if row.command == "take_for_review" else row.data
        prev_hash = prev if prev is not None else row.prev_hash
        h = rehash(row, data=data, prev_hash=prev_hash)
        statements.append(update(EVENTS).where(EVENTS.c.id == row.id).values(data=data, prev_hash=prev_hash, hash=h))
        prev = h
    sql(f, *statements)
    assert problems(f) == {(history["refs"][full], "history_rewritten", 15)}


def test_verify_dossier_keeps_its_contract_for_the_scenario_runner(history):
    f, full = history["factory"], history["full"]
    with f() as uow:
        assert verify_dossier(uow.session, full).ok
    sql(f, text("DELETE FROM events WHERE dossier_id = :d AND seq = 5").bindparams(d=full))
    with f() as uow:
        result = verify_dossier(uow.session, full)
    assert not result.ok and any(p["problem"] == "removed" and p["seq"] == 5 for p in result.problems)


def usine(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "USINE_DATABASE_URL": database_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}
    env.pop("USINE_CLOCK_START", None)
    return subprocess.run([sys.executable, "-m", "cli.main", "audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_usine_audit_verify_names_the_tampering_and_exits_non_zero(history, database_url):
    f, full = history["factory"], history["full"]
    ok = usine(database_url, "verify")
    assert ok.returncode == 0, ok.stderr
    assert "Aucune anomalie" in ok.stdout
    sql(f, text("DELETE FROM events WHERE dossier_id = :d AND seq = 5").bindparams(d=full))
    _delete_dossier(f, history["lapsed"])
    bad = usine(database_url, "verify")
    assert bad.returncode == 1
    assert "ANOMALIE removed" in bad.stdout and f"{history['refs'][full]} n°5" in bad.stdout
    assert "ANOMALIE dossier_removed" in bad.stdout and history["refs"][history["lapsed"]] in bad.stdout
    one = usine(database_url, "verify", "--dossier", str(full))
    assert one.returncode == 1 and history["refs"][history["lapsed"]] not in one.stdout


def test_the_daily_anchoring_flow_records_the_heads_that_moved_and_chains_to_the_previous_anchor(history, tmp_path):
    from workflows.audit_anchor import anchor_history

    f = history["factory"]
    journal = tmp_path / "anchors.jsonl"
    quiet = anchor_history.fn(journal=str(journal), uow_factory=f, clock=FrozenClock(datetime(2022, 1, 2, tzinfo=timezone.utc)))
    assert quiet["seq"] == 2 and quiet["changed"] == 0 and quiet["dossiers"] == 2
    with f() as uow:
        first = uow.session.scalar(select(AuditAnchor).where(AuditAnchor.seq == 1))
        assert quiet["prev_hash"] == first.hash
    assert journal.read_text("utf-8").count("\n") == 1
    assert verify_database(f.engine, journal=str(journal)).anchors["journal"]["anchors"] == 1


# -- backdating: an event moved back in time, the chain re-hashed after it ----------------------

def _rechain_from(f, dossier_id: int, seq: int, **changes) -> None:
    """Change event `seq` and re-hash it and every event after it, links included: what a forger
    who knows the hash scheme does so that every event still gives its hash."""
    with f.engine.connect() as conn:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.dossier_id == dossier_id, EVENTS.c.seq >= seq)
                            .order_by(EVENTS.c.seq)).all()
    statements, prev = [], None
    for row in rows:
        values = dict(changes) if row.seq == seq else {}
        prev_hash = prev if prev is not None else row.prev_hash
        h = rehash(row, prev_hash=prev_hash, **values)
        statements.append(update(EVENTS).where(EVENTS.c.id == row.id).values(prev_hash=prev_hash, hash=h, **values))
        prev = h
    sql(f, *statements)


@pytest.fixture
def unanchored(uow_factory):
    """Golden case 1 and golden case 9, never anchored: what `usine demo` and `usine api` left
    before they anchored."""
    full = play(uow_factory, "golden-1-sme-full-life")
    lapsed = play(uow_factory, "golden-9-document-chase-lapse")
    with uow_factory() as uow:
        refs = {d.id: d.reference for d in uow.session.scalars(select(m.Dossier))}
    return {"full": full, "lapsed": lapsed, "refs": refs, "factory": uow_factory}


def test_an_event_moved_before_its_predecessor_and_rehashed_after_is_named_backdated_at_its_own_number(unanchored):
    f, full = unanchored["factory"], unanchored["full"]
    vote, before = event(f, full, 9), event(f, full, 8)
    assert vote.command == "record_vote"
    _rechain_from(f, full, 9, at=before.at - timedelta(days=2))
    report = verify_database(f.engine)
    ref = unanchored["refs"][full]
    assert {(p["dossier"], p["problem"], p["seq"]) for p in report.problems} == {(ref, "inserted", 9)}
    assert "antidaté" in report.problems[0]["detail"]
    assert usine(str(f.engine.url.render_as_string(hide_password=False)), "verify").returncode == 1


def test_the_last_event_moved_before_its_predecessor_is_named_backdated_not_a_removed_event(unanchored):
    f, lapsed = unanchored["factory"], unanchored["lapsed"]
    with f.engine.connect() as conn:
        last_seq = conn.execute(select(EVENTS.c.seq).where(EVENTS.c.dossier_id == lapsed)
                                .order_by(EVENTS.c.seq.desc())).first()[0]
    before = event(f, lapsed, last_seq - 1)
    _rechain_from(f, lapsed, last_seq, at=before.at - timedelta(hours=1))
    ref = unanchored["refs"][lapsed]
    assert problems(f) == {(ref, "inserted", last_seq)}


def test_the_last_event_moved_back_but_still_after_its_predecessor_is_named_backdated(unanchored):
    f, full = unanchored["factory"], unanchored["full"]
    last, before = event(f, full, 15), event(f, full, 14)
    _rechain_from(f, full, 15, at=before.at + (last.at - before.at) / 2)
    ref = unanchored["refs"][full]
    assert problems(f) == {(ref, "inserted", 15)}


def test_the_last_event_deleted_without_an_anchor_is_still_named_as_removed(unanchored):
    f, full = unanchored["factory"], unanchored["full"]
    sql(f, text("DELETE FROM events WHERE dossier_id = :d AND seq = 15").bindparams(d=full))
    found = problems(f)
    ref = unanchored["refs"][full]
    assert (ref, "removed", 15) in found and (ref, "inserted", 14) not in found


def test_a_withdrawn_dossiers_last_event_moved_back_is_named_backdated_not_a_removed_event(uow_factory):
    # The withdrawal closes the open document requests in the same flush as the dossier's change:
    # the row's version still counts its events, which is what tells this from a cut tail.
    withdrawn = play(uow_factory, "golden-11-roles-and-withdrawal")
    last, before = event(uow_factory, withdrawn, 3), event(uow_factory, withdrawn, 2)
    assert last.command == "withdraw"
    _rechain_from(uow_factory, withdrawn, 3, at=before.at + (last.at - before.at) / 2)
    with uow_factory() as uow:
        ref = uow.session.get(m.Dossier, withdrawn).reference
    assert problems(uow_factory) == {(ref, "inserted", 3)}


def test_the_whole_database_check_gives_the_same_verdict_whatever_batch_the_dossier_rows_are_read_in(
        history, monkeypatch):
    """The dossier rows are read by id in bounded batches beside the ordered events (memory does not
    grow with the database): a dossier whose events were all deleted, between two intact ones, is
    still named, and the anchored heads are still all checked."""
    f, full, lapsed = history["factory"], history["full"], history["lapsed"]
    third = play(f, "golden-1-sme-full-life")
    first = min(full, lapsed, third)
    sql(f, text("DELETE FROM events WHERE dossier_id = :d").bindparams(d=first))
    expected = {(history["refs"].get(first) or _reference(f, first), "removed", None)}
    import services.audit.verify as verify

    for batch in (1, 2, verify.FACTS_BATCH):
        monkeypatch.setattr(verify, "FACTS_BATCH", batch)
        report = verify_database(f.engine)
        assert report.dossiers == 3
        found = {(p["dossier"], p["problem"], p["seq"]) for p in report.problems}
        assert expected <= found, (batch, found)
        assert {p[0] for p in found} == {p[0] for p in expected}, (batch, found)


def _reference(uow_factory, dossier_id: int) -> str:
    with uow_factory() as uow:
        return uow.session.get(m.Dossier, dossier_id).reference
