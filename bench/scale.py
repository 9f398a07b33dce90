"""Benchmark of the listings at national scale: `python -m bench.scale [--sizes 10000 100000]
[--postgres URL] [--sqlite] [--repeat 15]` (docs/performance.md).

Building (set-based, like `bench.sweep`): the demo is played through the services as of 15 June
2022 (`services.demo.load_demo`: dossiers of three programmes in every state, their events,
requests, claims, payments, loans, users), then its dossiers are copied until there are `size`:
each copy gets new ids and a reference of its own (« …-17 »), its rows of every table that
belongs to a dossier are copied by INSERT … SELECT in the database, and its events are
re-chained (their hash covers the reference: recomputed in Python, written by COPY on
PostgreSQL, multi-row INSERTs on SQLite). The outbox is not copied (its keys are unique). Then
the derived columns are computed the way the migration does (`services.deadlines.backfill`),
the tables analysed, and a sample of copied histories verified.

Measuring: each page is fetched `--repeat` times through the real applications (the workspace's
pages and the API, signed in as the demo's Occitanie officer, by an in-process HTTP client):
the queue (default, filtered by state, « à moi », page 5 by following its « page suivante »
links), the search by reference, company name and SIREN, the dashboard, one dossier's page and
the API listing. Printed: p50 and p99 in ms and the SQL statements of one fetch.

Measure only (`--measure URL`): the same measures on an existing database, with whatever code
is on PYTHONPATH — run with main's code to get a "before" on a database built here."""
from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import JSON, event, func, insert, literal, select, text

from db import models as m

OFFICER = "agent.occitanie"
COPIED = (m.DocumentRequest, m.PaymentClaim, m.Payment, m.RecoveryOrder, m.DeMinimisAid, m.Repayment, m.Document)


def build(url: str, size: int) -> dict:
    from db.engine import create_schema
    from services.demo import DEMO_NOW, load_demo
    from services.uow import unit_of_work_factory

    t0 = time.perf_counter()
    factory = unit_of_work_factory(url)
    create_schema(factory.engine)
    load_demo(factory, dossiers=120)
    demo_s = time.perf_counter() - t0
    engine = factory.engine
    with engine.begin() as conn:
        template = conn.execute(select(func.count()).select_from(m.Dossier)).scalar()
        top = {model: conn.execute(select(func.coalesce(func.max(model.id), 0))).scalar() for model in (m.Dossier, *COPIED)}
        events = conn.execute(select(m.Event.__table__).order_by(m.Event.dossier_id, m.Event.seq)).mappings().all()
        copies = max(0, -(-size // template) - 1)
        event_id = conn.execute(select(func.max(m.Event.id))).scalar()
        for k in range(1, copies + 1):
            _copy_rows(conn, k, top)
            rows = []
            previous = {}
            for e in events:
                from services.events import GENESIS, event_hash

                dossier_id = e["dossier_id"] + k * top[m.Dossier]
                reference = f"{e['dossier_reference']}-{k}"
                prev = previous.get(dossier_id, GENESIS)
                digest = event_hash(dossier_reference=reference, seq=e["seq"], at=e["at"], actor=e["actor"],
                                    role=e["role"], command=e["command"], state_before=e["state_before"],
                                    state_after=e["state_after"], programme=e["programme"], data=e["data"],
                                    reason=e["reason"], prev_hash=prev)
                previous[dossier_id] = digest
                event_id += 1
                rows.append({**e, "id": event_id, "dossier_id": dossier_id, "dossier_reference": reference,
                             "prev_hash": prev, "hash": digest})
            _write(conn, m.Event, rows)
        if conn.dialect.name == "postgresql":
            for model in (m.Dossier, m.Event, *COPIED):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{model.__tablename__}', 'id'), "
                                  f"(SELECT coalesce(max(id), 1) FROM \"{model.__tablename__}\"))"))
        from rules.calendar import paris_date
        from services.deadlines import backfill

        backfill(conn, paris_date(DEMO_NOW))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    with factory() as uow:
        from services.audit.verify import verify_dossier

        sample = uow.session.scalars(select(m.Dossier.id).where(m.Dossier.id > top[m.Dossier])
                                     .order_by(m.Dossier.id.desc()).limit(30)).all()
        verified = all(verify_dossier(uow.session, i).ok for i in sample)
        total = uow.session.scalar(select(func.count()).select_from(m.Dossier))
        states = dict(uow.session.execute(select(m.Dossier.status, func.count()).group_by(m.Dossier.status)).all())
    engine.dispose()
    return {"dossiers": total, "template": template, "copies": copies, "demo_s": round(demo_s, 1),
            "build_s": round(time.perf_counter() - t0, 1), "sample_verified": verified, "states": states}


def _copy_rows(conn, k: int, top: dict) -> None:
    off = k * top[m.Dossier]
    d = m.Dossier.__table__
    shifted = {"id": d.c.id + off, "reference": d.c.reference + literal(f"-{k}"),
               "cites_id": d.c.cites_id + off, "plan_id": d.c.plan_id + off}
    columns = [c.name for c in d.c]
    conn.execute(insert(d).from_select(columns, select(*[shifted.get(c, d.c[c]) for c in columns])
                                       .where(d.c.id <= top[m.Dossier])))
    claim_off = k * top[m.PaymentClaim]
    for model in COPIED:
        t = model.__table__
        moved = {"id": t.c.id + k * top[model], "dossier_id": t.c.dossier_id + off}
        if "claim_id" in t.c:
            moved["claim_id"] = t.c.claim_id + claim_off
        columns = [c.name for c in t.c]
        conn.execute(insert(t).from_select(columns, select(*[moved.get(c, t.c[c]) for c in columns])
                                           .where(t.c.id <= top[model], t.c.dossier_id.is_not(None))))


def _write(conn, model, rows: list[dict]) -> None:
    import json

    if not rows:
        return
    table = model.__table__
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
        cursor = conn.connection.dbapi_connection.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c in as_json and row[c] is not None else row[c]
                                for c in columns])
    else:
        for start in range(0, len(rows), 20_000):
            conn.execute(insert(table), rows[start:start + 20_000])


# -- measuring ------------------------------------------------------------------------------------

def _counter(engine):
    seen = {"n": 0}

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith(("BEGIN", "SET", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT")):
            seen["n"] += 1

    event.listen(engine, "before_cursor_execute", count)
    return seen


class _Done:
    status_code = 200  # what `measure` checks of each case: a service call that returned


def _counted(_report) -> _Done:
    return _Done()


def measure(url: str, repeat: int) -> list[tuple[str, float, float, int]]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from services.clock import FrozenClock
    from services.dashboard import refresh as refresh_dashboard
    from services.demo import DEMO_NOW
    from services.uow import unit_of_work_factory
    from services.users import DEMO_PASSWORD
    from web.app import create_standalone_app

    factory = unit_of_work_factory(url)
    clock = FrozenClock(DEMO_NOW + timedelta(hours=1))
    web = TestClient(create_standalone_app(uow_factory=factory, clock=clock, secret_key="bench-" * 8),
                     follow_redirects=False)
    login = web.get("/ui/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert web.post("/ui/login", data={"username": OFFICER, "password": DEMO_PASSWORD, "csrf_token": token,
                                       "next": ""}).status_code == 303
    api = TestClient(create_app(uow_factory=factory, clock=clock, secret_key="bench-" * 8))
    bearer = api.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).json()["access_token"]
    with factory() as uow:
        sample = uow.session.execute(select(m.Dossier.id, m.Dossier.reference, m.Dossier.company_facts)
                                     .where(m.Dossier.programme_id == "occitanie-prif")
                                     .order_by(m.Dossier.id.desc()).limit(1)).one()
    name_word = sample.company_facts["name"].split()[0]
    page5 = "/ui/dossiers"
    for _ in range(4):
        found = re.search(r'<a href="([^"]+)" rel="next"', web.get(page5).text)
        page5 = "/ui/dossiers" + found.group(1).replace("&amp;", "&") if found else page5
    cases = [
        ("queue (default)", lambda: web.get("/ui/dossiers")),
        ("queue, state = instruction", lambda: web.get("/ui/dossiers", params={"state": "eligibility_review"})),
        ("queue, « à moi »", lambda: web.get("/ui/dossiers", params={"mine": "1"})),
        ("queue, page 5 (its links)", lambda: web.get(page5)),
        ("search: reference", lambda: web.get("/ui/dossiers", params={"q": sample.reference})),
        (f"search: company name « {name_word.lower()} »", lambda: web.get("/ui/dossiers", params={"q": name_word.lower()})),
        ("search: SIREN (8 digits)", lambda: web.get("/ui/dossiers", params={"q": sample.company_facts["siren"][:8]})),
        # The count of every programme's figures (the refresh-dashboard flow, every 15 minutes: not
        # a page view), then the page, which reads what the count stored.
        ("dashboard count (flow, every 15 min)", lambda: _counted(refresh_dashboard(uow_factory=factory, clock=clock))),
        ("dashboard", lambda: web.get("/ui/tableau-de-bord")),
        ("one dossier's page", lambda: web.get(f"/ui/dossiers/{sample.id}")),
        ("API GET /dossiers", lambda: api.get("/dossiers", headers={"Authorization": f"Bearer {bearer}"})),
    ]
    seen = _counter(factory.engine)
    out = []
    for label, fetch in cases:
        seen["n"] = 0
        response = fetch()
        assert response.status_code == 200, (label, response.status_code, response.text[:300])
        statements = seen["n"]
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fetch()
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
        out.append((label, statistics.median(times), p99, statements))
    factory.engine.dispose()
    return out


def _print(title: str, rows) -> None:
    print(title)
    print(f"  {'page':<42} {'p50 ms':>9} {'p99 ms':>9} {'statements':>10}")
    for label, p50, p99, n in rows:
        print(f"  {label:<42} {p50:>9.1f} {p99:>9.1f} {n:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--postgres", default=None, help="an admin URL: a database per size is created there")
    parser.add_argument("--sqlite", action="store_true", help="also (or only, without --postgres) on SQLite")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the databases (for --measure)")
    parser.add_argument("--measure", default=None, help="only measure this existing database")
    args = parser.parse_args()
    if args.measure:
        _print(f"{args.measure}", measure(args.measure, args.repeat))
        return
    folder = Path(tempfile.mkdtemp(prefix="usine-scale-bench-"))
    for size in args.sizes:
        urls = []
        if args.postgres:
            from db.engine import make_engine

            name = f"usine_scale_{size}"
            admin = make_engine(args.postgres)
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            urls.append(args.postgres.rsplit("/", 1)[0] + "/" + name)
        if args.sqlite or not args.postgres:
            urls.append(f"sqlite:///{folder / f'scale-{size}.db'}")
        for url in urls:
            shape = build(url, size)
            print(f"{url}: {shape['dossiers']} dossiers ({shape['template']} played by the demo, {shape['copies']} "
                  f"copies), built in {shape['build_s']} s (demo {shape['demo_s']} s); copied histories verified: "
                  f"{shape['sample_verified']}; states: {shape['states']}")
            _print(f"  {size} dossiers, {url.split(':')[0]}", measure(url, args.repeat))
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
