"""Benchmark of the loan part of the deadline sweep: `python -m bench.loan_sweep [--sizes 10000 100000]`.

For each size, a fresh SQLite file (WAL, synchronous=FULL) gets that many Pays de la Loire
example dossiers in repayment (`pdl-ami-idf-exemple`, line 2: zero-rate loans of 20,000 to
150,000 €, 12 months' deferral, 16 quarterly instalments), bulk-inserted for speed but shaped as
`disburse_loan` leaves them (terms and disbursement day on the dossier, the outstanding principal
and the oldest unpaid due date kept for the sweep; the disbursement event is left out: the sweep
reads only the chain tip). Disbursements are spread over the 18 months before the sweep, with
no repayment recorded, so that some first instalments are just ahead (a due notice), some
overdue by 30 days (a reminder) and some by 60 (a default).

Then the loan sweep runs as of Wednesday 16 June 2021, 6:00 Paris, and again an hour later
(it must find nothing to do). Printed: the elapsed time, the SQL statements executed (a
`before_cursor_execute` listener: the same count whatever the number of loans, but for the
number of batches of 5,000), the peak RSS, and, as the floor, the time to compute the same
schedules and render the same letters alone."""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import event, insert

from bench.sweep import at, siren
from db import models as m
from db.engine import create_schema, make_engine
from notifications.rendering import render
from programmes import default_catalogue
from rules import loans as loan_rules
from rules.calendar import PARIS
from services import deadlines
from services.clock import FrozenClock
from services.sweep import sweep_part
from services.uow import unit_of_work_factory

TODAY = date(2021, 6, 16)
SWEEP_AT = datetime(2021, 6, 16, 6, 0, tzinfo=PARIS)
PROGRAMME_ID = "pdl-ami-idf-exemple"


def build(url: str, size: int, seed: int = 2021) -> dict:
    rng = random.Random(seed)
    engine = make_engine(url)
    create_schema(engine)
    programme = default_catalogue().latest(PROGRAMME_ID)
    loan = programme.phase(2).loan
    companies, dossiers = [], []
    due_soon = overdue = 0
    for i in range(1, size + 1):
        disbursed = TODAY - timedelta(days=rng.randint(380, 560))
        principal = Decimal(rng.randrange(20_000, 150_001, 1_000)).quantize(Decimal("0.01"))
        terms = {"kind": loan.kind, "principal": str(principal), "annual_rate": str(loan.annual_rate),
                 "deferral_months": loan.deferral_months, "instalments": loan.instalments,
                 "disbursed_on": disbursed.isoformat(), "phase": 2}
        plan = loan_rules.schedule(principal, loan.annual_rate, disbursed, loan.deferral_months, loan.instalments)
        first = plan[0].due_on
        due_soon += TODAY < first <= TODAY + timedelta(days=15)
        overdue += first + timedelta(days=30) <= TODAY
        name, number = f"Entreprise {i} SAS", siren(i)
        facts = {"siren": number, "name": name, "employees": 40, "equity": "500000.00", "region": "Pays de la Loire",
                 "first_fy_months": 36, "in_difficulty": False, "tax_social_up_to_date": True,
                 "activity": "industrial", "email": f"contact@entreprise-{i}.example.fr", "linked_sirens": []}
        companies.append({"id": i, "siren": number, "name": name, "email": facts["email"], "created_at": at(disbursed, 9)})
        dossiers.append({"id": i, "reference": f"PDL-{disbursed.year}-{i:06d}", "programme_id": programme.id,
                         "programme_version": programme.version, "company_id": i, "status": "in_repayment",
                         "version": 6, "company_facts": facts, "size_class": "sme", "consultant": None,
                         "officer": "Agent PdL", "quotes": {}, "proposal": None, "voted": None, "session_id": None,
                         "deliberation": None, "voted_on": None, "aid_total": 0, "paid_total": 0,
                         "recovered_total": 0, "cancelled_remainder": None, "payment_deadline_on": None,
                         "submitted_at": at(disbursed - timedelta(days=90), 10), "updated_at": at(disbursed, 10),
                         "closed_at": None, "line": 2, "loan": terms, "loan_outstanding": principal,
                         "loan_next_due_on": first})
    with engine.begin() as conn:
        for table, rows in ((m.Company, companies), (m.Dossier, dossiers)):
            for start in range(0, len(rows), 20_000):
                conn.execute(insert(table.__table__), rows[start:start + 20_000])
        deadlines.backfill(conn, TODAY)  # what the write path stores with each dossier
    engine.dispose()
    return {"loans": size, "first_instalment_within_15_days": due_soon, "overdue_30_days_or_more": overdue}


def run(url: str) -> dict:
    factory = unit_of_work_factory(url)
    statements = {"n": 0}

    def count(conn, cursor, statement, parameters, context, executemany):
        statements["n"] += 1

    event.listen(factory.engine, "before_cursor_execute", count)
    start = time.perf_counter()
    report = sweep_part("loans", uow_factory=factory, clock=FrozenClock(SWEEP_AT))
    first = {"elapsed_s": round(time.perf_counter() - start, 3), "statements": statements["n"],
             "notices": report.loan_notices, "defaults": report.loan_defaults, "batches": report.batches,
             "errors": report.errors[:3]}
    statements["n"] = 0
    again = sweep_part("loans", uow_factory=factory, clock=FrozenClock(SWEEP_AT + timedelta(hours=1)))
    first["second_sweep"] = {"statements": statements["n"], "items": again.loan_notices + again.loan_defaults}
    factory.engine.dispose()
    return first


def floor(letters: int, loans: int) -> float:
    """The schedules of every loan read and the same number of letters rendered, nothing else."""
    programme = default_catalogue().latest(PROGRAMME_ID)
    loan = programme.phase(2).loan
    context = {"dossier": {"reference": "PDL-2020-000001", "programme_id": programme.id, "programme_name": programme.name,
                           "region": programme.region, "company_name": "Entreprise SAS", "siren": "732829320",
                           "state": "in_repayment", "state_label": "en remboursement", "example": True},
               "recipient": {"role": "applicant", "name": "Entreprise SAS", "email": "contact@example.fr"},
               "instalment": {"number": 1, "date": "2021-06-01"}, "due_on": "2021-06-01", "unpaid": "6250.00"}
    start = time.perf_counter()
    for i in range(loans):
        loan_rules.loan_status(loan_rules.schedule(Decimal("100000.00"), loan.annual_rate, date(2020, 3, 1),
                                                   loan.deferral_months, loan.instalments), [])
    for _ in range(letters):
        render("repayment_reminder", context)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="usine-loan-sweep-"))
    try:
        for size in args.sizes:
            url = f"sqlite:///{folder / f'loans-{size}.db'}"
            t0 = time.perf_counter()
            shape = build(url, size)
            setup = time.perf_counter() - t0
            result = run(url)
            letters = result["notices"] + result["defaults"] * 2
            selected = shape["first_instalment_within_15_days"] + shape["overdue_30_days_or_more"]
            print(json.dumps({**shape, "setup_s": round(setup, 1), "sweep": result,
                              "floor_s": round(floor(letters, selected), 3),
                              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)},
                             ensure_ascii=False))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
