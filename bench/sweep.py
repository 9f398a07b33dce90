"""Benchmark of the deadline sweep on SQLite: `python -m bench.sweep [--sizes 10000 100000]`.

For each size, a fresh SQLite file (WAL, synchronous=FULL, as in production) gets that many
dossiers of the Occitanie programme, bulk-inserted for speed but shaped as the services make
them (companies, dossiers with their company facts, hash-chained events, document requests,
the outbox rows already sent): 40 % just submitted, 40 % taken for review, 20 % taken for
review with an open document request made on a working day of the last 30 days — with the
reminders of the days before already sent, as daily sweeps would have done. (Uploaded
documents are left out — the candidacies are recorded without pieces: the sweep never reads them.)

Then one sweep runs as of Wednesday 16 June 2021, 6:00 Paris: the requests made 7, 14 and 21
days before get their reminder or final notice, those of 17 May lapse — about 2.7 % of the
dossiers. It prints the elapsed time, the SQL statements it executed (counted with a
`before_cursor_execute` listener: BEGIN included, the same whatever the number of dossiers)
and, as the floor, the time to render the same letters alone. A second sweep the same morning
must find nothing."""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import JSON, event, insert, select

from db import models as m
from db.engine import create_schema, make_engine
from notifications.rendering import render
from programmes import default_catalogue
from rules.calendar import PARIS, deadline, is_working_day
from rules.identifiers import luhn_valid
from services import deadlines
from services.clock import FrozenClock
from services.events import GENESIS, canonical_json, event_hash
from services.sweep import sweep
from services.uow import unit_of_work_factory

TODAY = date(2021, 6, 16)
SWEEP_AT = datetime(2021, 6, 16, 6, 0, tzinfo=PARIS)
OFFICER = "Claire Fabre, chargée de mission"
CANDIDACY_DOCS: list = []  # candidacies without pieces: the sweep never reads documents


def siren(n: int) -> str:
    base = f"{3 + n // 10_000_000}{n % 10_000_000:07d}"
    return next(base + str(c) for c in range(10) if luhn_valid(base + str(c)))


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).astimezone(timezone.utc)


class Prototypes:
    """Letters rendered once per kind, then personalised by replacement (setup speed only)."""

    def __init__(self, programme):
        self.programme = programme
        self.cache: dict[tuple, tuple] = {}

    def letter(self, kind: str, **extra):
        key = (kind, tuple(sorted((k, str(v)) for k, v in extra.items())))
        if key not in self.cache:
            context = {"dossier": {"reference": "@REF@", "programme_id": self.programme.id,
                                   "programme_name": self.programme.name, "region": self.programme.region,
                                   "company_name": "@NAME@", "siren": "732829320", "state": "eligibility_review",
                                   "state_label": "instruction de recevabilité",
                                   "example": self.programme.status == "example"},
                       "recipient": {"role": "applicant", "name": "@NAME@", "email": "@MAIL@"}, **extra}
            r = render(kind, context)
            self.cache[key] = (r.subject, r.text, r.html, r.template_hash, context)
        return self.cache[key]


TABLES = (m.Company, m.Dossier, m.DocumentRequest, m.Event, m.Notification)


def build(url: str, size: int, seed: int = 2021) -> dict:
    """`size` dossiers in the (empty) database at `url`: `make_rows`, then `write_rows`."""
    return write_rows(url, make_rows(size, seed))


def make_rows(size: int, seed: int = 2021) -> dict:
    """The rows of `size` dossiers, table by table (`{Model: [row dicts]}`), ready to write."""
    rng = random.Random(seed)
    programme = default_catalogue().get("occitanie-prif", 1)
    key = programme.key
    protos = Prototypes(programme)
    request_days = [TODAY - timedelta(days=k) for k in range(1, 31)]
    request_days = [d for d in request_days if is_working_day(d) and deadline(d, 30) >= TODAY]
    companies, dossiers, requests, events, notes = [], [], [], [], []
    event_id = note_id = request_id = 0

    last_event_at: dict[int, datetime] = {}

    def add_event(chain, dossier_id, reference, seq, instant, actor, role, command, before, after, data, reason=None):
        # The dossier was last changed by its latest event (audit verify checks it).
        last_event_at[dossier_id] = max(instant, last_event_at.get(dossier_id, instant))
        nonlocal event_id
        event_id += 1
        data = json.loads(canonical_json(data))
        digest = event_hash(dossier_reference=reference, seq=seq, at=instant, actor=actor, role=role, command=command,
                            state_before=before, state_after=after, programme=key, data=data, reason=reason,
                            prev_hash=chain)
        events.append({"id": event_id, "dossier_id": dossier_id, "dossier_reference": reference, "seq": seq,
                       "at": instant, "actor": actor, "role": role, "command": command, "state_before": before,
                       "state_after": after, "programme": key, "data": data, "reason": reason, "prev_hash": chain,
                       "hash": digest, "recorded_at": instant})
        return digest

    def add_note(dossier_id, reference, name, mail, kind, dedupe, instant, **extra):
        nonlocal note_id
        note_id += 1
        subject, text, html, thash, context = protos.letter(kind, **extra)
        def sub(s):
            return s.replace("@REF@", reference).replace("@NAME@", name).replace("@MAIL@", mail)

        notes.append({"id": note_id, "dossier_id": dossier_id, "kind": kind, "dedupe_key": f"{reference}:{dedupe}",
                      "recipient_role": "applicant", "recipient_name": name, "recipient_address": mail,
                      "subject": sub(subject), "body_text": sub(text), "body_html": sub(html), "template_hash": thash,
                      "context": context, "status": "sent", "attempts": 1, "next_attempt_at": instant,
                      "last_error": None, "created_at": instant, "sent_at": instant + timedelta(minutes=5)})

    for i in range(1, size + 1):
        kind_of_life = rng.random()
        with_request = kind_of_life < 0.20
        taken = kind_of_life < 0.60
        requested_on = rng.choice(request_days) if with_request else None
        submitted_on = (requested_on or TODAY - timedelta(days=rng.randint(1, 60))) - timedelta(days=rng.randint(2, 20))
        name, number = f"Entreprise {i} SAS", siren(i)
        mail = f"contact@entreprise-{i}.example.fr"
        facts = {"siren": number, "name": name, "employees": 45, "equity": "200000.00", "region": "Occitanie",
                 "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
                 "activity": "industrial", "email": mail, "linked_sirens": []}
        reference = f"OCC-{submitted_on.year}-{i:06d}"
        companies.append({"id": i, "siren": number, "name": name, "email": mail, "created_at": at(submitted_on, 10)})
        status = "eligibility_review" if taken else "submitted"
        chain = add_event(GENESIS, i, reference, 1, at(submitted_on, 10), "Contact entreprise", "applicant",
                          "submit_candidacy", "draft", "submitted",
                          {"programme": key, "programme_hash": programme.content_hash, "company": facts,
                           "de_minimis_prior": [], "documents": CANDIDACY_DOCS})
        add_note(i, reference, name, mail, "candidacy_received", "candidacy_received", at(submitted_on, 10),
                 submitted_at=at(submitted_on, 10).isoformat())
        seq, version = 1, 1
        if taken:
            seq += 1
            version += 1
            chain = add_event(chain, i, reference, seq, at(submitted_on + timedelta(days=1), 9), OFFICER, "officer",
                              "take_for_review", "submitted", "eligibility_review", {"officer": OFFICER})
        if with_request:
            request_id += 1
            lapse_on = deadline(requested_on, 30)
            requests.append({"id": request_id, "dossier_id": i, "kinds": ["tax_certificate"], "requested_by": OFFICER,
                             "requested_at": at(requested_on, 10), "requested_on": requested_on, "lapse_on": lapse_on,
                             "status": "open", "closed_at": None})
            seq += 1
            version += 1
            chain = add_event(chain, i, reference, seq, at(requested_on, 10), OFFICER, "officer", "request_documents",
                              status, status, {"request_id": request_id, "kinds": ["tax_certificate"],
                                               "requested_on": requested_on.isoformat(),
                                               "lapse_on": lapse_on.isoformat()})
            add_note(i, reference, name, mail, "documents_requested", f"docreq:{request_id}:requested",
                     at(requested_on, 10), kinds=["tax_certificate"], requested_on=requested_on.isoformat(),
                     lapse_on=lapse_on.isoformat())
            for step in programme.reminders.steps:
                due = deadline(requested_on, step.after_days, shift_to_working_day=programme.reminders.shift_to_working_day)
                if due < TODAY:  # sent by the sweep of that morning
                    seq += 1
                    version += 1
                    chain = add_event(chain, i, reference, seq, at(due, 6), "usine", "system", "remind", status, status,
                                      {"request_id": request_id, "after_days": step.after_days, "kind": step.kind})
                    extra = {"kinds": ["tax_certificate"], "requested_on": requested_on.isoformat(),
                             "lapse_on": lapse_on.isoformat()}
                    if step.kind == "documents_reminder":
                        extra["step_day"] = step.after_days
                    add_note(i, reference, name, mail, step.kind, f"docreq:{request_id}:{step.after_days}",
                             at(due, 6), **extra)
        dossiers.append({"id": i, "reference": reference, "programme_id": programme.id,
                         "programme_version": programme.version, "company_id": i, "status": status,
                         "version": version, "company_facts": facts, "size_class": None, "consultant": None,
                         "officer": OFFICER if taken else None, "quotes": {}, "proposal": None, "voted": None,
                         "session_id": None, "deliberation": None, "voted_on": None, "aid_total": None,
                         "paid_total": 0, "recovered_total": 0, "cancelled_remainder": None,
                         "payment_deadline_on": None, "submitted_at": at(submitted_on, 10),
                         "updated_at": last_event_at[i], "closed_at": None})
    return {m.Company: companies, m.Dossier: dossiers, m.DocumentRequest: requests, m.Event: events,
            m.Notification: notes}


def write_rows(url: str, rows: dict) -> dict:
    """Create the schema at `url` and write `make_rows`' rows in one transaction: PostgreSQL's
    COPY on PostgreSQL (an INSERT per row through a pipeline took ~2 min for 100,000 dossiers),
    multi-row INSERTs on SQLite; then the id sequences moved past the ids written."""
    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            _copy(conn, rows)
        else:
            for table in TABLES:
                batch = rows[table]
                for start in range(0, len(batch), 20_000):
                    conn.execute(insert(table.__table__), batch[start:start + 20_000])
        # What the write path stores with each dossier (its next deadline, its search text).
        deadlines.backfill(conn, TODAY)
    engine.dispose()
    return {"dossiers": len(rows[m.Dossier]), "open_requests": len(rows[m.DocumentRequest]),
            "events": len(rows[m.Event]), "notifications": len(rows[m.Notification])}


def _copy(conn, rows: dict) -> None:
    cursor = conn.connection.dbapi_connection.cursor()
    for model in TABLES:
        table, batch = model.__table__, rows[model]
        if not batch:
            continue
        columns = list(batch[0])
        as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in batch:
                copy.write_row([json.dumps(row[c]) if c in as_json and row[c] is not None else row[c]
                                for c in columns])
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                       f"(SELECT max(id) FROM \"{table.name}\"))")


def run_sweep(url: str) -> dict:
    factory = unit_of_work_factory(url)
    statements = {"n": 0}

    def count(conn, cursor, statement, parameters, context, executemany):
        statements["n"] += 1

    event.listen(factory.engine, "before_cursor_execute", count)
    start = time.perf_counter()
    report = sweep(uow_factory=factory, clock=FrozenClock(SWEEP_AT))
    elapsed = time.perf_counter() - start
    first = {"elapsed_s": round(elapsed, 3), "statements": statements["n"], **report.as_dict()}
    statements["n"] = 0
    start = time.perf_counter()
    again = sweep(uow_factory=factory, clock=FrozenClock(SWEEP_AT + timedelta(hours=1)))
    first["second_sweep"] = {"elapsed_s": round(time.perf_counter() - start, 3), "statements": statements["n"],
                             "items": again.reminders + again.final_notices + again.lapsed}
    with factory() as uow:
        first["history_sample_verified"] = _verify_sample(uow.session)
    factory.engine.dispose()
    return first


def _verify_sample(session) -> bool:
    from services.audit.verify import verify_dossier

    ids = session.scalars(select(m.Dossier.id).where(m.Dossier.status == "lapsed").limit(20)).all()
    ids += session.scalars(select(m.Event.dossier_id).where(m.Event.command == "remind")
                           .order_by(m.Event.id.desc()).limit(20)).all()
    return all(verify_dossier(session, i).ok for i in ids)


def render_floor(count: int) -> float:
    """Rendering the same number of letters, nothing else: the part no database work can avoid."""
    protos = Prototypes(default_catalogue().get("occitanie-prif", 1))
    _s, _t, _h, _hash, context = protos.letter("documents_reminder", kinds=["tax_certificate"],
                                               requested_on="2021-06-09", lapse_on="2021-07-09", step_day=7)
    start = time.perf_counter()
    for _ in range(count):
        render("documents_reminder", context)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite files (default: a temp dir)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="usine-sweep-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        path = folder / f"sweep-{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        t0 = time.perf_counter()
        shape = build(url, size)
        setup = time.perf_counter() - t0
        result = run_sweep(url)
        items = result["reminders"] + result["final_notices"] + result["lapsed"]
        floor = render_floor(items)
        results.append((size, result))
        print(f"{size:>7} dossiers ({shape['open_requests']} open requests, {shape['events']} events, "
              f"{shape['notifications']} outbox rows; setup {setup:.1f} s)")
        print(f"        sweep as of {SWEEP_AT.isoformat()}: {result['elapsed_s']:.3f} s, "
              f"{result['statements']} SQL statements, {result['batches']} batch(es)")
        print(f"        due: {result['reminders']} reminders, {result['final_notices']} final notices, "
              f"{result['lapsed']} lapses ({items / size:.1%} of the dossiers)")
        print(f"        floor: rendering {items} letters alone takes {floor:.3f} s")
        print(f"        second sweep the same morning: {result['second_sweep']['items']} items, "
              f"{result['second_sweep']['elapsed_s']:.3f} s, {result['second_sweep']['statements']} statements; "
              f"histories verified: {result['history_sample_verified']}")
    counts = {r["statements"] for _, r in results}
    print("statement count " + ("identical" if len(counts) == 1 else "DIFFERS")
          + " across sizes: " + ", ".join(f"{s}: {r['statements']}" for s, r in results))
    if args.dir is None:  # the databases weigh about 1 GB per 100,000 dossiers
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
