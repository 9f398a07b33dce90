"""Benchmark: what the API's own anchoring (`api.anchoring`) costs, on SQLite.

The API anchors from a background task of its lifespan, every USINE_API_ANCHOR_SECONDS (900) and
at shutdown: a command runs no statement more than before. What it can cost a command is a wait:
on SQLite one transaction writes at a time (the API queues its transactions on one lock), so a
command arriving while an anchor runs waits for it — at most one anchor's duration, once an
interval. On PostgreSQL the anchor reads with one grouped query and writes only its own tables:
a command never waits for it.

Measured here on generated valid histories (`bench.audit_verify.generate`, not timed), in one run:
the floor (the grouped query that finds every dossier's head, alone), the first anchor (every
head), a periodic round with nothing moved (no anchor written), and a round after some dossiers
moved (one event appended to each).

    python -m bench.api_anchor [--dossiers 10000] [--events-per-dossier 100] [--moved 500] [--dir ./var/bench]
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.audit_verify import generate, sqlite_at

UTC = timezone.utc


def _median(fn, rounds: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def _move(path: Path, count: int, step: int) -> None:
    """Append one event to each of `count` dossiers (a chained, hashed remind)."""
    from services.events import event_hash

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    rows = conn.execute("SELECT e.dossier_id, e.dossier_reference, e.seq, e.hash, e.at, e.state_after FROM events e "
                        "JOIN (SELECT dossier_id, MAX(seq) s FROM events GROUP BY dossier_id) h "
                        "ON h.dossier_id = e.dossier_id AND h.s = e.seq ORDER BY e.dossier_id LIMIT ?", (count,)).fetchall()
    for did, ref, seq, prev, at, state in rows:
        when = datetime.fromisoformat(at).replace(tzinfo=UTC) + timedelta(days=step)
        h = event_hash(dossier_reference=ref, seq=seq + 1, at=when, actor="system", role="system", command="remind",
                       state_before=state, state_after=state, programme="occitanie-prif@v1", data={}, reason=None,
                       prev_hash=prev)
        conn.execute("INSERT INTO events (dossier_id, dossier_reference, seq, at, actor, role, command, state_before, "
                     "state_after, programme, data, reason, prev_hash, hash, recorded_at) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (did, ref, seq + 1, sqlite_at(when), "system", "system", "remind", state, state,
                      "occitanie-prif@v1", "{}", None, prev, h, sqlite_at(when)))
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=10000)
    parser.add_argument("--events-per-dossier", type=int, default=100)
    parser.add_argument("--moved", type=int, default=500)
    parser.add_argument("--dir", default="./var/bench")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "api_anchor.db"
    total, _ = generate(path, args.dossiers, args.events_per_dossier)
    print(f"{total:,} events in {args.dossiers:,} dossiers (generated, not timed)")

    from sqlalchemy import text

    from api.app import SerializedFactory
    from services.audit.anchors import _CURRENT_HEADS, anchor
    from services.clock import FrozenClock
    from services.uow import unit_of_work_factory

    factory = SerializedFactory(unit_of_work_factory(f"sqlite:///{path}"))  # the API's SQLite factory
    clock = FrozenClock(datetime(2022, 1, 1, tzinfo=UTC))

    def floor():
        with factory.engine.connect() as conn:
            conn.execute(text(_CURRENT_HEADS.text)).all()

    floor_median, floor_min = _median(floor)
    print(f"floor — the grouped query finding every head, alone: median {floor_median * 1000:.0f} ms "
          f"(min {floor_min * 1000:.0f} ms)")
    t = time.perf_counter()
    first = anchor(factory, clock)
    print(f"first anchor ({first.changed:,} heads written): {(time.perf_counter() - t) * 1000:.0f} ms")
    idle_median, idle_min = _median(lambda: anchor(factory, clock, only_if_moved=True))
    print(f"periodic round, nothing moved (no anchor written): median {idle_median * 1000:.0f} ms "
          f"(min {idle_min * 1000:.0f} ms) — {idle_median / floor_median:.1f}× the floor")
    moved = []
    for step in range(1, 4):
        _move(path, args.moved, step)
        t = time.perf_counter()
        result = anchor(factory, clock, only_if_moved=True)
        moved.append(time.perf_counter() - t)
        assert result is not None and result.changed == min(args.moved, args.dossiers)
    print(f"periodic round after {args.moved:,} dossiers moved (anchor written): median "
          f"{statistics.median(moved) * 1000:.0f} ms — {statistics.median(moved) / floor_median:.1f}× the floor")
    print(f"so: a command arriving during a round waits at most ~{max(moved) * 1000:.0f} ms, once every "
          f"USINE_API_ANCHOR_SECONDS (900 s by default), on SQLite only; no statement is added to any command")
    factory.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()


if __name__ == "__main__":
    main()
