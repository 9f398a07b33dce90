"""Benchmark of the pure loan rules: `python -m bench.loans [--loans 100000]`.

For N loans (principals spread from 10,000 € to about 1 M€, rates 0 %, 1 %, 2.03 %, a 12-month
deferral and 20 instalments: 24 quarters each, as the PdL line-3 loan), it times, in one run:

* ``schedule(...)``: drawing each loan's schedule (24 ``Instalment`` objects, due dates included);
* ``gross_grant_equivalent(...)``: each loan's GGE at a 0.69 % reference and discount rate;
* the floor: the same loop building, for each loan, a tuple of 24 Decimal products — what any
  Decimal schedule costs before a single rule is applied.

It prints the total and the time per loan of each, beside the floor. No database, no I/O: the
figures depend on the machine only (run it alone: the host has 2 shared cores)."""
from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from decimal import Decimal

from rules.gge import gross_grant_equivalent
from rules.loans import schedule

RATES = (Decimal(0), Decimal("0.0100"), Decimal("0.0203"))
REFERENCE = Decimal("0.0069")


def loans(count: int):
    start = date(2020, 1, 1)
    for i in range(count):
        yield (Decimal(1_000_000 + 9_901 * i % 99_000_000).scaleb(-2), RATES[i % 3],
               start + timedelta(days=i % 1461))


def timed(label: str, run, count: int, floor: float | None = None) -> float:
    began = time.perf_counter()
    run()
    elapsed = time.perf_counter() - began
    ratio = f"  ({elapsed / floor:.1f} × le plancher)" if floor else ""
    print(f"{label:<34} {elapsed:8.3f} s au total  {elapsed / count * 1e6:8.1f} µs par prêt{ratio}")
    return elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=100_000, help="nombre de prêts (100 000 par défaut)")
    args = parser.parse_args(argv)
    count = max(1, min(args.loans, 1_000_000))
    book = list(loans(count))

    def floor_loop():
        for principal, rate, _day in book:
            tuple(principal * k for k in range(24))

    def schedules():
        for principal, rate, day in book:
            schedule(principal, rate, day, 12, 20)

    def gges():
        for principal, rate, _day in book:
            gross_grant_equivalent(principal, rate, 12, 20, reference=REFERENCE, discount=REFERENCE)

    print(f"{count} prêts de 24 trimestres (différé 12 mois, 20 échéances)")
    floor = timed("plancher : 24 Decimal par prêt", floor_loop, count)
    timed("échéancier (schedule)", schedules, count, floor)
    timed("équivalent-subvention brut (GGE)", gges, count, floor)


if __name__ == "__main__":
    main()
