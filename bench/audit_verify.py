"""Benchmark: `usine audit verify` over 1,000,000 events on SQLite (target < 20 s).

The events are generated as valid hash chains with the reference hash of `services.events`
(`event_hash`, the same code the commands use), bulk-inserted with sqlite3, together with the
dossier rows they must agree with. Generation is not timed. Then the whole-database
verification runs — every event re-hashed, every chain walked, every dossier compared with its
history, the anchors checked — first as a function call, then as the real CLI command.

    python -m bench.audit_verify [--dossiers 10000] [--events-per-dossier 100] [--dir ./var/bench]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from db.engine import create_schema, make_engine
from services.events import GENESIS, canonical_json, event_hash

UTC = timezone.utc
COMPANY = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
           "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
           "activity": "industrial", "turnover": None, "balance_sheet": None, "email": None, "linked_sirens": []}
KINDS = ("kbis", "financial_statement", "tax_certificate", "social_certificate", "rib", "de_minimis_attestation",
         "consultant_quote")


def sqlite_at(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def life(reference: str, n: int, start: datetime):
    """(seq, at, actor, role, command, before, after, data, reason) of a plausible history of n
    events: a candidacy, taken for review, then documents requested, handed in and reviewed."""
    yield (1, start, "Mme Durand", "applicant", "submit_candidacy", "draft", "submitted",
           {"programme": "occitanie-prif@v1", "company": COMPANY, "de_minimis_prior": [], "documents": list(KINDS)}, None)
    if n > 1:
        yield (2, start + timedelta(days=1), "Claire Fabre", "officer", "take_for_review", "submitted",
               "eligibility_review", {"officer": "Claire Fabre"}, None)
    version = 0
    for seq in range(3, n + 1):
        at = start + timedelta(days=1, minutes=7 * seq)
        step = seq % 3
        if step == 0:
            yield (seq, at, "Claire Fabre", "officer", "request_documents", "eligibility_review", "eligibility_review",
                   {"request_id": seq, "kinds": ["kbis"], "requested_on": at.date().isoformat(),
                    "lapse_on": (at.date() + timedelta(days=30)).isoformat()}, None)
        elif step == 1:
            version += 1
            yield (seq, at, "Mme Durand", "applicant", "provide_documents", "eligibility_review", "eligibility_review",
                   {"documents": [{"kind": "kbis", "version": version, "sha256": f"{seq:064x}",
                                   "filename": f"kbis-{version}.pdf", "size": 48213 + seq}],
                    "fulfilled_requests": [seq - 1]}, None)
        else:
            yield (seq, at, "Claire Fabre", "officer", "review_document", "eligibility_review", "eligibility_review",
                   {"document_id": seq, "kind": "kbis", "version": version, "decision": "accepted"},
                   "pièce conforme")


def generate(path: Path, dossiers: int, per_dossier: int) -> tuple[int, float]:
    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    now = sqlite_at(datetime(2021, 1, 4, tzinfo=UTC))
    conn.execute("INSERT INTO companies (id, siren, name, email, created_at) VALUES (1, '732829320', "
                 "'Atelier Garonne SAS', NULL, ?)", (now,))
    total = 0
    batch = []
    for d in range(1, dossiers + 1):
        reference = f"OCC-2021-{d:06d}"
        start = datetime(2021, 1, 4, 9, tzinfo=UTC) + timedelta(minutes=d)
        prev = GENESIS
        last_at = start
        last_state = "draft"
        for seq, at, actor, role, command, before, after, data, reason in life(reference, per_dossier, start):
            data = json.loads(canonical_json(data))
            h = event_hash(dossier_reference=reference, seq=seq, at=at, actor=actor, role=role, command=command,
                           state_before=before, state_after=after, programme="occitanie-prif@v1", data=data,
                           reason=reason, prev_hash=prev)
            batch.append((d, reference, seq, sqlite_at(at), actor, role, command, before, after, "occitanie-prif@v1",
                          json.dumps(data, ensure_ascii=False), reason, prev, h, sqlite_at(at)))
            prev, last_at, last_state = h, at, after
            total += 1
        conn.execute(
            "INSERT INTO dossiers (id, reference, programme_id, programme_version, company_id, status, version, "
            "company_facts, quotes, paid_total, recovered_total, submitted_at, updated_at) "
            "VALUES (?, ?, 'occitanie-prif', 1, 1, ?, ?, ?, '{}', 0, 0, ?, ?)",
            (d, reference, last_state, per_dossier + 1, json.dumps(COMPANY), sqlite_at(start), sqlite_at(last_at)))
        if len(batch) >= 50000:
            _flush(conn, batch)
    _flush(conn, batch)
    conn.execute("COMMIT")
    conn.close()
    return total, time.perf_counter() - started


def _flush(conn, batch: list) -> None:
    conn.executemany(
        "INSERT INTO events (dossier_id, dossier_reference, seq, at, actor, role, command, state_before, state_after, "
        "programme, data, reason, prev_hash, hash, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    batch.clear()



# `python -c` runs the CLI, then prints its own high-water mark (VmHWM, since its exec) on stderr.
_PEAK_PROBE = """
import atexit, sys
def _peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            print('usine-peak-kb', line.split()[1], file=sys.stderr)
atexit.register(_peak)
import cli.main
sys.argv = ['usine', *sys.argv[1:]]
cli.main.main()
"""

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=10000)
    parser.add_argument("--events-per-dossier", type=int, default=100)
    parser.add_argument("--dir", default="./var/bench")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audit_verify.db"
    total, gen_seconds = generate(path, args.dossiers, args.events_per_dossier)
    print(f"generated {total:,} events in {args.dossiers:,} dossiers ({gen_seconds:.1f} s, not timed below); "
          f"database {path.stat().st_size / 1e6:.0f} MB")

    from services.audit.anchors import anchor
    from services.audit.verify import verify_database
    from services.clock import FrozenClock
    from services.uow import unit_of_work_factory

    factory = unit_of_work_factory(f"sqlite:///{path}")
    t = time.perf_counter()
    a = anchor(factory, FrozenClock(datetime(2022, 1, 1, tzinfo=UTC)))
    print(f"anchor: {a.dossiers:,} dossier heads, {a.events:,} events covered — {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    report = verify_database(factory.engine)
    seconds = time.perf_counter() - t
    assert report.ok, report.problems[:5]
    print(f"verify_database: {report.events:,} events, {report.dossiers:,} dossiers, ok={report.ok} — "
          f"{seconds:.2f} s ({report.events / seconds:,.0f} events/s)")
    env = {**os.environ, "USINE_DATABASE_URL": f"sqlite:///{path.resolve()}", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}
    bench_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _PEAK_PROBE, "audit", "verify"], env=env, capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1])
    cli_seconds = time.perf_counter() - t
    # Not getrusage(RUSAGE_CHILDREN): a child's ru_maxrss keeps what it held between fork and
    # exec — this bench's own memory, which grows with the database it generated — so it read as
    # the CLI's growth. The kernel's VmHWM belongs to the exec'd program alone.
    peak = re.search(r"^usine-peak-kb (\d+)$", run.stderr, re.M)
    cli_rss_mb = int(peak.group(1)) / 1024 if peak else float("nan")
    print(f"`usine audit verify` (CLI, process start included): exit {run.returncode} — {cli_seconds:.2f} s, "
          f"peak RSS {cli_rss_mb:,.0f} MB (this bench process, which generated the data: {bench_rss_mb:,.0f} MB)")
    print(run.stdout.strip().splitlines()[0] if run.stdout else run.stderr[-500:])
    print(f"target < 20 s: {'met' if cli_seconds < 20 else 'NOT met'}")
    factory.engine.dispose()
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(path) + suffix)
            if p.exists():
                p.unlink()


if __name__ == "__main__":
    main()
