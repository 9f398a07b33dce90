"""Benchmark: N full dossier lives (golden case 1) through the services on SQLite, next to the
raw durable SQLite commit rate measured in the same run on the same disk (the floor we compete
with: one INSERT and one fsynced COMMIT, WAL + synchronous=FULL, as Usine's engine is set).

    python -m bench.engine [--dossiers 100] [--dir ./var/bench]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path

from db.engine import create_schema
from services import commands
from services.clock import FrozenClock
from services.storage import InMemoryStorage
from services.uow import unit_of_work_factory

SCENARIO = Path(__file__).resolve().parents[1].parent / "shared" / "scenarios" / "golden-1-sme-full-life.json"


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


def play_lives(folder: Path, dossiers: int) -> tuple[int, float]:
    url = f"sqlite:///{folder / 'usine.db'}"
    factory = unit_of_work_factory(url, storage=InMemoryStorage())
    create_schema(factory.engine)
    steps = [s for s in json.loads(SCENARIO.read_text("utf-8"))["steps"] if "refused" not in (s.get("expect") or {})]
    clock = FrozenClock(datetime.fromisoformat(steps[0]["at"]))
    from services.scenario import DISPATCH

    import copy
    import random

    from services.demo import luhn_siren

    rng = random.Random(1)
    count = 0
    start = time.perf_counter()
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
    elapsed = time.perf_counter() - start
    factory.engine.dispose()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=100)
    parser.add_argument("--dir", default=None, help="folder for the databases (default: a temp folder under ./var)")
    args = parser.parse_args()
    Path("var").mkdir(exist_ok=True)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-", dir="var"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        raw = raw_commit_rate(folder)
        count, elapsed = play_lives(folder, args.dossiers)
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    cps = count / elapsed
    print(json.dumps({
        "dossiers": args.dossiers, "commands": count, "seconds": round(elapsed, 2),
        "dossiers_per_s": round(args.dossiers / elapsed, 2), "commands_per_s": round(cps, 1),
        "raw_durable_sqlite_commits_per_s": round(raw, 1),
        "ratio_to_raw": round(cps / raw, 3), "target_ratio": 0.5,
    }, indent=2))


if __name__ == "__main__":
    main()
