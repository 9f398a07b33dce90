"""Benchmark: replay of one dossier with 10,000 events (target < 100 ms).

Golden case 1 is played through the real services (15 events: candidacy to the closing
payment, with the vote's and the claims' rule inputs); then its diagnostic phase is stretched
with 9,985 more events — new versions of an annex, their reviews, document requests and the
pieces that fulfil them — and the whole chain is renumbered and re-hashed with
the reference `event_hash`, so the dossier holds one valid 10,000-event history. The replay
reads the events table alone, folds every event, re-computes every rule (aid at the proposal
and the vote, claim assessments, payments, deadlines) and builds the state; timed end to end,
database read included.

    python -m bench.audit_replay [--events 10000] [--runs 20] [--dir ./var/bench]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select

from db import models as m
from db.engine import create_schema
from rules.calendar import deadline, paris_date
from services.events import GENESIS, canonical_json, event_hash
from services.storage import InMemoryStorage
from services.uow import unit_of_work_factory

EVENTS = m.Event.__table__


def stretch(events: list, total: int) -> list[dict]:
    """The golden history with diagnostic-phase events inserted after event 3 (eligibility
    declared), renumbered and re-chained."""
    head, tail = events[:3], events[3:]
    extra = total - len(events)
    base = head[-1]
    out = [dict(e._mapping) for e in head]
    version = 0
    request_id = 1000
    at = base.at
    for i in range(extra):
        at = at + timedelta(minutes=4)
        row = {k: v for k, v in base._mapping.items()}
        row.update(reason=None, state_before="diagnostic", state_after="diagnostic")
        step = i % 4
        if step == 0:
            version += 1
            row.update(command="provide_documents", actor="Cabinet Midi Conseil", role="consultant", data={
                "documents": [{"kind": "other", "version": version, "sha256": f"{version:064x}",
                               "filename": f"annexe-v{version}.pdf", "size": 200000 + version}],
                "fulfilled_requests": []})
        elif step == 1:
            row.update(command="review_document", actor="officer (scénario)", role="officer", data={
                "document_id": 100000 + version, "kind": "other", "version": version,
                "decision": "accepted"})
        elif step == 2:
            request_id += 1
            day = paris_date(at)
            row.update(command="request_documents", actor="officer (scénario)", role="officer", data={
                "request_id": request_id, "kinds": ["other"], "requested_on": day.isoformat(),
                "lapse_on": deadline(day, 30).isoformat()})
        else:
            version += 1
            row.update(command="provide_documents", actor="Cabinet Midi Conseil", role="consultant", data={
                "documents": [{"kind": "other", "version": version, "sha256": f"{version:064x}",
                               "filename": f"annexe-v{version}.pdf", "size": 200000 + version}],
                "fulfilled_requests": [request_id]})
        row["at"] = row["recorded_at"] = at
        out.append(row)
    out += [dict(e._mapping) for e in tail]
    assert out[-len(tail)]["at"] > at, "the stretched phase must end before the next real event"
    prev = GENESIS
    for seq, row in enumerate(out, start=1):
        row.pop("id", None)
        row["seq"] = seq
        row["data"] = json.loads(canonical_json(row["data"]))
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(
            dossier_reference=row["dossier_reference"], seq=seq, at=row["at"], actor=row["actor"], role=row["role"],
            command=row["command"], state_before=row["state_before"], state_after=row["state_after"],
            programme=row["programme"], data=row["data"], reason=row["reason"], prev_hash=prev)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dir", default="./var/bench")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audit_replay.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(str(path) + suffix).exists():
            Path(str(path) + suffix).unlink()
    factory = unit_of_work_factory(f"sqlite:///{path}", storage=InMemoryStorage())
    create_schema(factory.engine)

    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.audit_scenarios import play

    dossier = play(factory, "golden-1-sme-full-life")
    with factory.engine.begin() as conn:
        events = conn.execute(select(EVENTS).where(EVENTS.c.dossier_id == dossier).order_by(EVENTS.c.seq)).all()
        rows = stretch(events, args.events)
        conn.execute(delete(EVENTS).where(EVENTS.c.dossier_id == dossier))
        conn.execute(insert(EVENTS), rows)
    print(f"dossier {events[0].dossier_reference}: {len(rows):,} events (golden case 1 played through the services, "
          f"diagnostic phase stretched)")

    from services.audit.records import load_events_for_replay
    from services.audit.replay import replay_dossier
    from services.audit.verify import verify_dossier

    middle = rows[len(rows) // 2]["at"]
    timings, load_timings, middle_timings = [], [], []
    result = None
    for _ in range(args.runs):
        with factory() as uow:
            t = time.perf_counter()
            result = replay_dossier(uow.session, dossier)
            timings.append(time.perf_counter() - t)
        with factory() as uow:
            t = time.perf_counter()
            load_events_for_replay(uow.session, dossier)
            load_timings.append(time.perf_counter() - t)
        with factory() as uow:
            t = time.perf_counter()
            replay_dossier(uow.session, dossier, at=middle)
            middle_timings.append(time.perf_counter() - t)
    assert result.events_applied == len(rows)
    assert result.ok, [d.as_dict() for d in result.discrepancies][:5]
    assert result.state["amounts"]["net_paid"] == "16300.00"
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.1f} ms, min {min(xs) * 1000:.1f} ms"  # noqa: E731
    print(f"replay to the present ({result.events_applied:,} events, {result.checks:,} rule checks, "
          f"{len(result.state['documents']):,} document versions, {len(result.state['document_requests']):,} requests): "
          f"{ms(timings)} over {args.runs} runs")
    print(f"  of which reading the 10,000 events (SQLite, driver rows, JSON parsed): {ms(load_timings)}")
    print(f"replay at an instant half-way: {ms(middle_timings)}")
    with factory() as uow:
        t = time.perf_counter()
        v = verify_dossier(uow.session, dossier)
        print(f"verify_dossier (re-hash all {len(rows):,} events): ok={v.ok} — {(time.perf_counter() - t) * 1000:.0f} ms")
    print(f"target < 100 ms: {'met' if statistics.median(timings) < 0.1 else 'NOT met'}")
    factory.engine.dispose()


if __name__ == "__main__":
    main()
