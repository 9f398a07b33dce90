"""Benchmark: N full dossier lives (golden case 1) through the services on SQLite, next to two
floors measured in the same run on the same disk, WAL + synchronous=FULL as Usine's engine is set:

- the raw durable SQLite commit rate: one INSERT and one fsynced COMMIT (the issue's floor);
- the same SQL replayed raw: every statement the services sent, with its parameters, captured
  transaction by transaction and replayed through `sqlite3` on an empty schema, one fsynced
  COMMIT per command — what the database alone costs for these commands, with no Python
  service code at all. Its ratio to the raw commit rate is the ceiling of the issue's ratio for
  transactions of this shape (a command writes the dossier, its event, its letter, their indexes).

And a peer in the same round: the same lives through SpiffWorkflow (`bench/peers/spiff_peer.py`,
its BPMN beside it), a Python BPMN engine, on the same durability with a hash-chained audit row,
its spec restored by the documented serializer and kept parsed in memory. The command path's two
targets are printed beside them: Usine ÷ the same SQL replayed raw ≥ 0.5, Usine ÷ Spiff (spec
cached) ≥ 2. Without SpiffWorkflow (a bench-only extra: `pip install -e '.[bench]'`) the peer is
skipped, said so on stderr, and the rest runs.

    python -m bench.engine [--dossiers 100] [--dir ./var/bench]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.peers import spiff_peer
from db.engine import create_schema
from services import commands
from services.clock import FrozenClock
from services.storage import InMemoryStorage
from services.uow import unit_of_work_factory

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "golden" / "golden-1-sme-full-life.json"


def raw_commit_rate(folder: Path, seconds: float = 3.0) -> float:
    path = folder / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (payload) VALUES (?)", ("x" * 200,))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def lives_steps() -> list:
    """Golden case 1's commands, without its refused one: 15 commands a dossier."""
    return [s for s in json.loads(SCENARIO.read_text("utf-8"))["steps"] if "refused" not in (s.get("expect") or {})]


def play_lives(folder: Path, dossiers: int, capture: list | None = None) -> tuple[int, float, float]:
    """Plays the lives; with `capture`, appends each command's statements (captured outside
    the timed region's logic: a list append per statement) for `replay_raw`."""
    url = f"sqlite:///{folder / 'usine.db'}"
    factory = unit_of_work_factory(url, storage=InMemoryStorage())
    create_schema(factory.engine)
    current: list = []
    if capture is not None:
        from sqlalchemy import event

        @event.listens_for(factory.engine, "before_cursor_execute")
        def _capture(_conn, _cursor, statement, parameters, _context, executemany):
            if not statement.startswith("BEGIN"):
                current.append((statement, parameters, executemany))
    steps = lives_steps()
    clock = FrozenClock(datetime.fromisoformat(steps[0]["at"]))
    import copy
    import random

    from services.demo import luhn_siren
    from services.scenario import DISPATCH

    rng = random.Random(1)
    count = 0
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(dossiers):
        dossier_id = None
        # one company per dossier: the same SIREN would soon exhaust its de minimis ceiling
        lives = copy.deepcopy(steps)
        lives[0]["with"]["company"]["siren"] = luhn_siren(rng)
        for step in lives:
            clock.set(datetime.fromisoformat(step["at"]))
            actor = commands.Actor(step["as"], step["as"])
            with factory() as uow:
                out = DISPATCH[step["do"]][1](step, uow, clock, actor, dossier_id, "occitanie-prif")
            dossier_id = dossier_id or out.dossier_id
            count += 1
            if capture is not None:
                capture.append(current[:])
                current.clear()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    factory.engine.dispose()
    return count, elapsed, cpu


def _is_batch(parameters, many: bool) -> bool:
    # SQLAlchemy flags its one-row-at-a-time INSERT … RETURNING as "many" too.
    return many and bool(parameters) and isinstance(parameters[0], (tuple, list, dict))


def replay_raw(folder: Path, transactions: list) -> tuple[float, float]:
    """The captured statements replayed through sqlite3 on an empty schema: transactions/s and
    statements per transaction."""
    from db.engine import make_engine

    path = folder / "replay.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    start = time.perf_counter()
    for statements in transactions:
        conn.execute("BEGIN IMMEDIATE")
        for statement, parameters, many in statements:
            if _is_batch(parameters, many):
                conn.executemany(statement, parameters)
            else:
                conn.execute(statement, tuple(parameters))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(transactions) / elapsed, sum(len(t) for t in transactions) / len(transactions)


def replay_through_sqlalchemy(folder: Path, transactions: list) -> float:
    """The same statements through SQLAlchemy's cheapest path (`Connection.exec_driver_sql`,
    no ORM, no SQL compilation) on Usine's own engine settings: transactions/s. The stack is
    fixed (SQLAlchemy 2): no command written with it can beat this."""
    from db.engine import make_engine

    engine = make_engine(f"sqlite:///{folder / 'replay-sqlalchemy.db'}")
    create_schema(engine)
    start = time.perf_counter()
    for statements in transactions:
        with engine.begin() as conn:
            for statement, parameters, many in statements:
                conn.exec_driver_sql(statement, list(parameters) if _is_batch(parameters, many) else tuple(parameters))
    elapsed = time.perf_counter() - start
    engine.dispose()
    return len(transactions) / elapsed


def one_round(folder: Path, dossiers: int) -> dict:
    """Each rate measured back to back on the same disk, so that one round sees one machine load."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = raw_commit_rate(folder, seconds=2.0)
    lives = folder / "lives"
    lives.mkdir()
    count, elapsed, cpu = play_lives(lives, dossiers)
    captured: list = []
    capture_folder = folder / "capture"
    capture_folder.mkdir()
    play_lives(capture_folder, min(dossiers, 100), capture=captured)
    replayed, statements = replay_raw(folder, captured)
    through_sqlalchemy = replay_through_sqlalchemy(folder, captured)
    result = {"raw": raw, "commands": count, "seconds": elapsed, "cps": count / elapsed, "cpu": cpu / count,
              "replayed": replayed,
              "statements": statements, "through_sqlalchemy": through_sqlalchemy}
    if spiff_peer.available():
        # The peer: the same lives, the same commands and data, the same disk, in the same round.
        for mode in spiff_peer.MODES:
            peer_count, peer_elapsed, peer_cpu = spiff_peer.play_lives(folder / f"spiff-{mode}", dossiers,
                                                                       lives_steps(), mode)
            assert peer_count == count, (peer_count, count)
            result[f"spiff_{mode}"] = peer_count / peer_elapsed
            result[f"spiff_{mode}_cpu"] = peer_cpu / peer_count
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the figures are the medians of the rounds' ratios")
    parser.add_argument("--dir", default=None, help="folder for the databases (default: a temp folder under ./var)")
    args = parser.parse_args()
    peer = spiff_peer.available()
    if not peer:
        print("SpiffWorkflow n'est pas installé (pip install -e '.[bench]') : le pair Spiff est omis, "
              "le reste du banc tourne.", file=sys.stderr)
    Path("var").mkdir(exist_ok=True)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-", dir="var"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        rounds = [one_round(folder / f"round-{i}", args.dossiers) for i in range(args.rounds)]
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

    def median(key) -> float:
        return statistics.median(key(r) for r in rounds)

    figures: dict = {
        "dossiers": args.dossiers, "rounds": args.rounds, "commands_per_round": rounds[0]["commands"],
        "commands_per_s": round(median(lambda r: r["cps"]), 1),
        "dossiers_per_s": round(median(lambda r: args.dossiers / r["seconds"]), 2),
        "raw_durable_sqlite_commits_per_s": round(median(lambda r: r["raw"]), 1),
        "ratio_to_raw": round(median(lambda r: r["cps"] / r["raw"]), 3), "target_ratio": 0.5,
        "statements_per_command": round(rounds[0]["statements"], 1),
        "same_sql_replayed_raw_per_s": round(median(lambda r: r["replayed"]), 1),
        "ceiling_ratio_for_this_sql": round(median(lambda r: r["replayed"] / r["raw"]), 3),
        "same_sql_through_sqlalchemy_per_s": round(median(lambda r: r["through_sqlalchemy"]), 1),
        "ceiling_ratio_with_sqlalchemy": round(median(lambda r: r["through_sqlalchemy"] / r["raw"]), 3),
        "ratio_to_same_sql_through_sqlalchemy": round(median(lambda r: r["cps"] / r["through_sqlalchemy"]), 3),
        "per_round": [{"raw": round(r["raw"]), "commands_per_s": round(r["cps"]), "replayed_raw": round(r["replayed"]),
                       "through_sqlalchemy": round(r["through_sqlalchemy"])} for r in rounds],
        "load_average": round(os.getloadavg()[0], 2),
    }
    # The two targets for the command path, each a ratio of rates measured in the same round.
    figures["ratio_to_same_sql_replayed_raw"] = round(median(lambda r: r["cps"] / r["replayed"]), 3)
    figures["target_ratio_to_same_sql_replayed_raw"] = 0.5
    # CPU of this process a command: what a loaded host's waits (disk, other jobs) do not inflate.
    figures["cpu_ms_per_command"] = round(median(lambda r: r["cpu"]) * 1000, 2)
    if peer:
        figures["spiffworkflow"] = spiff_peer.version()
        for mode in spiff_peer.MODES:
            figures[f"spiff_{mode}_commands_per_s"] = round(median(lambda r: r[f"spiff_{mode}"]), 1)
            figures[f"ratio_to_spiff_{mode}"] = round(median(lambda r: r["cps"] / r[f"spiff_{mode}"]), 2)
            figures[f"spiff_{mode}_cpu_ms_per_command"] = round(median(lambda r: r[f"spiff_{mode}_cpu"]) * 1000, 2)
        figures["target_ratio_to_spiff_spec_cached"] = 2
        for r, line in zip(rounds, figures["per_round"]):
            line["spiff_documented"] = round(r["spiff_documented"])
            line["spiff_spec_cached"] = round(r["spiff_spec_cached"])
    else:
        figures["spiffworkflow"] = "absent: the peer's line is skipped (pip install -e '.[bench]')"
    print(json.dumps(figures, indent=2))
    # One line a round, side by side: the floors, Usine, the peer, the two ratios.
    for i, r in enumerate(rounds):
        peer_part = (f"  spiff documented {r['spiff_documented']:6.0f}  spiff spec-cached {r['spiff_spec_cached']:6.0f}"
                     f"  usine/spiff-cached {r['cps'] / r['spiff_spec_cached']:5.2f} (≥ 2)") if peer else "  spiff: absent"
        print(f"round {i + 1}: raw commit {r['raw']:6.0f}/s  sql replayed raw {r['replayed']:6.0f}/s  "
              f"usine {r['cps']:5.0f}/s  usine/replayed {r['cps'] / r['replayed']:5.3f} (≥ 0.5){peer_part}")


if __name__ == "__main__":
    main()
