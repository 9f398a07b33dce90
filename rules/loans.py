"""Loans of SPEC §11.3: the schedule (échéancier) drawn at disbursement, how a repayment is
allocated, and which instalments are in arrears. Pure functions over Decimal euros.

The schedule
------------
A loan of principal P disbursed on D, at an annual rate r, with a deferral of d months and n
repayment instalments, has d/3 + n quarterly *quarters*; quarter k (k = 1, 2, …) falls due on
``add_months(D, 3k)`` — computed from D each time, never from the previous due date, so a loan
disbursed on 31 January falls due on 30 April, 31 July, 31 October, 31 January (the day is
clamped to the month's end only where the month is shorter). Due dates are contractual: they do
not move to working days.

* the first d/3 quarters repay no principal (interest only);
* the next n repay a constant share round_half_up(P / n, 2), the last one taking the remainder
  so that the shares add up to P exactly (with an absurdly small P, e.g. 0.07 € over 10
  instalments, a share is never more than what is still outstanding: the principal then ends
  early and the remaining quarters are 0 €);
* the interest of a quarter is round_half_up(outstanding before it × r / 4, 2): a quarter's
  interest, whatever the number of days in it;
* a 0 € quarter is not listed: a zero-rate loan's deferral has no instalment at all.

``instalments`` in the loan figures of SCENARIOS.md is the number of instalments *listed*: 24
for the line-3 loan of golden 12 (4 interest-only instalments + 20 with principal), 16 for the
zero-rate line-2 loan of golden 13 (its 4 deferral quarters are 0 € and not listed).

Repayments
----------
What is due on a day = the unpaid part of the instalments due on or before that day. A
repayment settles the oldest instalment first, interest before principal. More than what is due
is refused (rule ``overpayment``), unless it is exactly a full early repayment: the outstanding
principal plus the unpaid interest of the instalments already due (no interest runs between due
dates, no penalty); that ends the schedule (the remaining instalments' interest is never owed).
A repayment is recorded in the order received: one dated before the last recorded one is refused.

Arrears
-------
An instalment still unpaid (even partly) on its due date + 30 calendar days gets a reminder; on
its due date + 60 calendar days the loan is in default. Neither date moves to a working day.
A loan in default is back up to date once nothing is due and unpaid on the day: the repayment
that does it is ``amount_due(...)`` on that day.

Decimal arithmetic runs in a local context (34 digits, the usual traps), so a caller's context
never changes a result; amounts are rounded half-up to the cent as stated above, and nowhere
else. Standard library only, plus ``rules.calendar.add_months`` and the project's errors.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import NamedTuple

from rules import french
from rules.calendar import add_months
from rules.errors import InvalidInput, RuleViolation

__all__ = [
    "DEFAULT_AFTER_DAYS",
    "REMINDER_AFTER_DAYS",
    "Allocation",
    "ArrearsStep",
    "Instalment",
    "LoanStatus",
    "NextDue",
    "Repayment",
    "RepaymentResult",
    "amount_due",
    "apply_repayment",
    "arrears_steps",
    "default_cured",
    "early_repayment_amount",
    "in_default",
    "loan_figures",
    "loan_status",
    "quarter_outstandings",
    "schedule",
    "schedule_of",
    "undisbursed_status",
    "voted_loan_terms",
]

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
#: Calendar days after a due date at which an unpaid instalment gets a reminder / puts the loan
#: in default (SPEC §11.3; never moved to a working day).
REMINDER_AFTER_DAYS = 30
DEFAULT_AFTER_DAYS = 60

# Exact for every figure a loan has (cents, rates of a few decimals); 34 digits (IEEE decimal128)
# for the one inexact step, P / n, before it is rounded to the cent.
DECIMAL_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN,
                          traps=[InvalidOperation, DivisionByZero, Overflow])


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


_euros = french.euros  # « 21 928,50 € », as every French page, letter and export writes it
_day = french.day  # « 15/10/2021 »


# --- terms --------------------------------------------------------------------------------


def _check_terms(principal, annual_rate, deferral_months, instalments) -> None:
    if not isinstance(principal, Decimal) or not principal.is_finite():
        raise InvalidInput("principal", f"principal : un montant en euros (Decimal) est attendu, reçu « {principal!r} ».")
    if principal <= 0 or int(principal.as_tuple().exponent) < -2:  # finite: the exponent is an int
        raise InvalidInput("principal", f"principal : un montant positif d'au plus deux décimales est attendu (reçu « {principal} »).")
    if not isinstance(annual_rate, Decimal) or not annual_rate.is_finite() or not (0 <= annual_rate < 1):
        raise InvalidInput("annual_rate", f"annual_rate : un taux annuel entre 0 et 1 est attendu (0.0203 pour 2,03 %), reçu « {annual_rate!r} ».")
    if isinstance(deferral_months, bool) or not isinstance(deferral_months, int) or deferral_months < 0 or deferral_months % 3:
        raise InvalidInput("deferral_months", f"deferral_months : un différé se compte en trimestres entiers (0, 3, 6, 12… mois), reçu « {deferral_months!r} ».")
    if isinstance(instalments, bool) or not isinstance(instalments, int) or instalments < 1:
        raise InvalidInput("instalments", f"instalments : au moins une échéance d'amortissement est attendue, reçu « {instalments!r} ».")


def _require_day(value, field: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput(field, f"{field} : une date (jour calendaire) est attendue, reçu « {value!r} ».")
    return value


def quarter_outstandings(principal: Decimal, deferral_months: int, instalments: int) -> list[tuple[Decimal, Decimal]]:
    """(outstanding during the quarter, principal repaid at its end) for every quarter k = 1 …
    deferral/3 + instalments, 0 € quarters included. The schedule and the GGE both walk it."""
    _check_terms(principal, Decimal(0), deferral_months, instalments)
    with localcontext(DECIMAL_CONTEXT):
        interest_only = deferral_months // 3
        share = _cents(principal / instalments)
        outstanding = principal
        rows = [(principal, ZERO)] * interest_only
        for k in range(1, instalments + 1):
            repaid = outstanding if k == instalments else min(share, outstanding)
            rows.append((outstanding, repaid))
            outstanding -= repaid
    return rows


# --- the schedule ---------------------------------------------------------------------------


class Instalment(NamedTuple):
    """One listed instalment (échéance), immutable. ``number`` counts the listed instalments
    from 1. (A NamedTuple rather than a frozen dataclass: drawing 24 of them is a third of a
    schedule's cost, and a tuple is built several times faster.)"""

    number: int
    due_on: date
    principal: Decimal
    interest: Decimal
    outstanding_before: Decimal

    @property
    def amount(self) -> Decimal:
        return self.principal + self.interest

    @property
    def outstanding_after(self) -> Decimal:
        return self.outstanding_before - self.principal

    def as_dict(self) -> dict:
        return {"number": self.number, "date": self.due_on.isoformat(), "principal": str(self.principal),
                "interest": str(self.interest), "amount": str(self.amount),
                "outstanding_after": str(self.outstanding_after)}


def schedule(principal: Decimal, annual_rate: Decimal, disbursed_on: date, deferral_months: int,
             instalments: int) -> tuple[Instalment, ...]:
    """The schedule of SPEC §11.3 (see the module's docstring), drawn on the disbursement day.

    Golden 12: ``schedule(Decimal("400000.00"), Decimal("0.0203"), date(2020, 7, 15), 12, 20)``
    has 24 instalments; the first, on 2020-10-15, is 0 € of principal and 2 030,00 € of interest;
    the fifth (2021-10-15) repays 20 000 €; the sixth's interest is 1 928,50 €.

    Refuses (``InvalidInput`` naming the field) a principal that is not a positive amount of at
    most two decimals, a rate outside [0, 1), a deferral that is not whole quarters, fewer than
    one instalment.
    """
    _check_terms(principal, annual_rate, deferral_months, instalments)
    _require_day(disbursed_on, "disbursed_on")
    listed: list[Instalment] = []
    append = listed.append
    interest_only = deferral_months // 3
    last = interest_only + instalments
    day = disbursed_on.day
    month_index = disbursed_on.year * 12 + disbursed_on.month - 1
    # The same walk as quarter_outstandings(), inlined: it is the hot loop of a schedule.
    with localcontext(DECIMAL_CONTEXT):
        quarter_rate = annual_rate / 4  # exact: a decimal divided by 4 terminates
        share = _cents(principal / instalments)
        outstanding = principal
        for k in range(1, last + 1):
            if k <= interest_only:
                repaid = ZERO
            elif k == last:
                repaid = outstanding
            else:
                repaid = min(outstanding, share)
            interest = (outstanding * quarter_rate).quantize(CENT, rounding=ROUND_HALF_UP)
            if repaid or interest:
                if day <= 28:  # every month has the day: add_months() would give the same date
                    year, month0 = divmod(month_index + 3 * k, 12)
                    due_on = date(year, month0 + 1, day)
                else:
                    due_on = add_months(disbursed_on, 3 * k)
                append(Instalment(len(listed) + 1, due_on, repaid, interest, outstanding))
            outstanding -= repaid
    return tuple(listed)


# --- repayments -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Repayment:
    """A repayment Finance recorded: the amount received and the day it was received."""

    amount: Decimal
    received_on: date


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one repayment settled of one instalment."""

    instalment: int
    due_on: date
    interest: Decimal
    principal: Decimal

    def as_dict(self) -> dict:
        return {"instalment": self.instalment, "date": self.due_on.isoformat(),
                "interest": str(self.interest), "principal": str(self.principal)}


@dataclass(frozen=True, slots=True)
class NextDue:
    """The unpaid remainder of the oldest unpaid instalment."""

    due_on: date
    principal: Decimal
    interest: Decimal

    def as_dict(self) -> dict:
        return {"date": self.due_on.isoformat(), "principal": str(self.principal), "interest": str(self.interest)}


@dataclass(frozen=True, slots=True)
class LoanStatus:
    """The loan figures of SCENARIOS.md. ``repaid`` is principal repaid; ``instalments`` the
    number of instalments of the schedule as drawn at disbursement (an early repayment does not
    change it)."""

    principal: Decimal
    disbursed: Decimal
    repaid: Decimal
    interest_paid: Decimal
    outstanding: Decimal
    instalments: int
    next_due: NextDue | None
    ended_early: bool = False

    @property
    def repaid_in_full(self) -> bool:
        return self.disbursed > 0 and self.outstanding == 0

    def as_dict(self) -> dict:
        return {"principal": str(self.principal), "disbursed": str(self.disbursed), "repaid": str(self.repaid),
                "interest_paid": str(self.interest_paid), "outstanding": str(self.outstanding),
                "instalments": self.instalments,
                "next_due": self.next_due.as_dict() if self.next_due else None}


@dataclass(frozen=True, slots=True)
class RepaymentResult:
    """A repayment accepted: how it was allocated, whether it ended the schedule early, and the
    loan figures after it."""

    repayment: Repayment
    allocations: tuple[Allocation, ...]
    early_repayment: bool
    status: LoanStatus

    @property
    def interest(self) -> Decimal:
        return sum((a.interest for a in self.allocations), ZERO)

    @property
    def principal(self) -> Decimal:
        return sum((a.principal for a in self.allocations), ZERO)


class _Book:
    """What has been paid of each instalment, replayed from the recorded repayments."""

    __slots__ = ("ended", "ended_early", "interest_paid", "last_on", "plan", "principal_paid")

    def __init__(self, plan: Sequence[Instalment]):
        if not plan:
            raise InvalidInput("schedule", "schedule : l'échéancier est vide.")
        self.plan = plan
        self.interest_paid = [ZERO] * len(plan)
        self.principal_paid = [ZERO] * len(plan)
        self.ended = False
        self.ended_early = False
        self.last_on: date | None = None

    def outstanding(self) -> Decimal:
        return sum((i.principal for i in self.plan), ZERO) - sum(self.principal_paid, ZERO)

    def unpaid(self, index: int) -> tuple[Decimal, Decimal]:
        inst = self.plan[index]
        return inst.interest - self.interest_paid[index], inst.principal - self.principal_paid[index]

    def due(self, on: date) -> Decimal:
        if self.ended:
            return ZERO
        total = ZERO
        for index, inst in enumerate(self.plan):
            if inst.due_on > on:
                break
            interest, principal = self.unpaid(index)
            total += interest + principal
        return total

    def early_amount(self, on: date) -> Decimal:
        if self.ended:
            return ZERO
        interest = ZERO
        for index, inst in enumerate(self.plan):
            if inst.due_on > on:
                break
            interest += self.unpaid(index)[0]
        return self.outstanding() + interest

    def settle(self, amount: Decimal, on: date, *, early: bool) -> tuple[Allocation, ...]:
        allocations = []
        left = amount
        for index, inst in enumerate(self.plan):
            if left == 0:
                break
            interest, principal = self.unpaid(index)
            if inst.due_on > on:
                if not early:
                    break
                interest = ZERO  # not owed: no interest runs between due dates after an early repayment
            if interest == 0 and principal == 0:
                continue
            pay_interest = min(interest, left)
            pay_principal = min(principal, left - pay_interest)
            self.interest_paid[index] += pay_interest
            self.principal_paid[index] += pay_principal
            left -= pay_interest + pay_principal
            allocations.append(Allocation(inst.number, inst.due_on, pay_interest, pay_principal))
        assert left == 0, "a repayment is allocated in full"  # guarded by apply()'s checks
        if early:
            self.ended = self.ended_early = True
        return tuple(allocations)

    def apply(self, repayment: Repayment) -> tuple[tuple[Allocation, ...], bool]:
        amount = repayment.amount
        if (isinstance(amount, bool) or not isinstance(amount, Decimal) or not amount.is_finite()
                or int(amount.as_tuple().exponent) < -2):
            raise InvalidInput("amount", f"amount : un montant en euros d'au plus deux décimales est attendu, reçu « {amount!r} ».")
        if amount <= 0:
            raise InvalidInput("amount", f"amount : le montant remboursé doit être positif (reçu « {amount} »).")
        on = _require_day(repayment.received_on, "received_on")
        if self.last_on is not None and on < self.last_on:
            raise InvalidInput("received_on",
                               f"received_on : un remboursement reçu le {_day(on)} ne peut être enregistré après "
                               f"celui reçu le {_day(self.last_on)} : les remboursements s'enregistrent dans "
                               "l'ordre de leur réception.", rule="repayment_order")
        due = self.due(on)
        early_amount = self.early_amount(on)
        if early_amount == 0:
            raise RuleViolation("overpayment",
                                f"Le prêt est entièrement remboursé : le remboursement de {_euros(amount)} "
                                f"reçu le {_day(on)} ne correspond à aucune somme due.",
                                field="amount", due=str(ZERO), early_repayment=str(ZERO))
        if amount <= due:
            allocations = self.settle(amount, on, early=False)
            early = False
        elif amount == early_amount:
            allocations = self.settle(amount, on, early=True)
            early = True
        else:
            raise RuleViolation(
                "overpayment",
                f"Remboursement de {_euros(amount)} reçu le {_day(on)} refusé : {_euros(due)} "
                f"{'sont dus' if due >= 2 else 'est dû'} à cette date (échéances échues et non payées) ; "
                f"un remboursement anticipé total serait exactement de {_euros(early_amount)}.",
                field="amount", due=str(due), early_repayment=str(early_amount))
        self.last_on = on
        if self.outstanding() == 0 and all(self.unpaid(i)[0] == 0 for i in range(len(self.plan))):
            self.ended = True  # the last instalment paid: nothing more is owed
        return allocations, early

    def status(self) -> LoanStatus:
        principal = sum((i.principal for i in self.plan), ZERO)
        repaid = sum(self.principal_paid, ZERO)
        next_due = None
        if not self.ended:
            for index, inst in enumerate(self.plan):
                interest, owed = self.unpaid(index)
                if interest or owed:
                    next_due = NextDue(inst.due_on, owed, interest)
                    break
        return LoanStatus(principal=principal, disbursed=principal, repaid=repaid,
                          interest_paid=sum(self.interest_paid, ZERO), outstanding=principal - repaid,
                          instalments=len(self.plan), next_due=next_due,
                          ended_early=self.ended_early)


def _replay(plan: Sequence[Instalment], payments: Iterable[Repayment]) -> _Book:
    book = _Book(plan)
    with localcontext(DECIMAL_CONTEXT):
        for payment in payments:
            book.apply(payment)
    return book


def apply_repayment(plan: Sequence[Instalment], payments_so_far: Iterable[Repayment], amount: Decimal,
                    received_on: date) -> RepaymentResult:
    """Allocate a repayment received on ``received_on`` after the ones already recorded.

    Returns the allocations (oldest instalment first, interest before principal), whether it
    was a full early repayment, and the loan figures after it. Refuses, changing nothing:
    ``overpayment`` (field ``amount``, details ``due`` and ``early_repayment``) for more than
    is due that is not exactly the full early repayment, or for any amount once the loan is
    repaid; ``invalid_input`` for an amount that is not a positive Decimal of at most two
    decimals; ``repayment_order`` (field ``received_on``) for a day before the last recorded
    repayment.
    """
    book = _replay(plan, payments_so_far)
    repayment = Repayment(amount, received_on)
    with localcontext(DECIMAL_CONTEXT):
        allocations, early = book.apply(repayment)
        return RepaymentResult(repayment, allocations, early, book.status())


def loan_status(plan: Sequence[Instalment], payments: Iterable[Repayment]) -> LoanStatus:
    """The loan figures after the recorded repayments (golden 12: after disbursement, repaid
    0.00, outstanding 400000.00, 24 instalments, next due 2020-10-15 0.00 + 2030.00)."""
    book = _replay(plan, payments)
    with localcontext(DECIMAL_CONTEXT):
        return book.status()


def undisbursed_status(principal: Decimal) -> LoanStatus:
    """The loan figures of a voted loan not yet disbursed: nothing disbursed, no schedule."""
    return LoanStatus(principal=principal, disbursed=ZERO, repaid=ZERO, interest_paid=ZERO,
                      outstanding=ZERO, instalments=0, next_due=None)


def amount_due(plan: Sequence[Instalment], payments: Iterable[Repayment], on: date) -> Decimal:
    """The unpaid part of the instalments due on or before ``on``: the most a repayment received
    that day may be (short of a full early repayment), and the repayment that brings a loan in
    default back up to date."""
    _require_day(on, "on")
    book = _replay(plan, payments)
    with localcontext(DECIMAL_CONTEXT):
        return book.due(on)


def early_repayment_amount(plan: Sequence[Instalment], payments: Iterable[Repayment], on: date) -> Decimal:
    """The exact amount of a full early repayment received on ``on``: the outstanding principal
    plus the unpaid interest of the instalments due on or before that day (0.00 once repaid)."""
    _require_day(on, "on")
    book = _replay(plan, payments)
    with localcontext(DECIMAL_CONTEXT):
        return book.early_amount(on)


# --- arrears --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArrearsStep:
    """An instalment unpaid past a step: ``step`` is "reminder" (due + 30 days) or "default"
    (due + 60 days); ``on`` is the day the step was reached. The pair (instalment, step) is the
    key a sweep records so that it acts exactly once per instalment and step."""

    instalment: int
    due_on: date
    step: str
    on: date
    unpaid_interest: Decimal
    unpaid_principal: Decimal

    @property
    def key(self) -> tuple[int, str]:
        return self.instalment, self.step

    @property
    def unpaid(self) -> Decimal:
        return self.unpaid_interest + self.unpaid_principal


_STEPS = (("reminder", timedelta(days=REMINDER_AFTER_DAYS)), ("default", timedelta(days=DEFAULT_AFTER_DAYS)))


def arrears_steps(plan: Sequence[Instalment], payments: Iterable[Repayment], as_of: date) -> tuple[ArrearsStep, ...]:
    """Every (instalment, step) reached by ``as_of`` for instalments still unpaid, even partly,
    counting the repayments received on or before ``as_of``. Golden 13: the instalment of
    2022-09-01, unpaid, reaches its reminder on 2022-10-01 and its default on 2022-10-31 — a
    sweep on 2022-10-03 sees the reminder, one on 2022-11-02 both (the reminder already sent,
    it acts on the default only)."""
    _require_day(as_of, "as_of")
    book = _replay(plan, (p for p in payments if p.received_on <= as_of))
    steps = []
    if book.ended:
        return ()
    with localcontext(DECIMAL_CONTEXT):
        for index, inst in enumerate(book.plan):
            if inst.due_on >= as_of:
                break
            interest, principal = book.unpaid(index)
            if not (interest or principal):
                continue
            for step, after in _STEPS:
                reached = inst.due_on + after
                if reached <= as_of:
                    steps.append(ArrearsStep(inst.number, inst.due_on, step, reached, interest, principal))
    return tuple(steps)


def in_default(plan: Sequence[Instalment], payments: Iterable[Repayment], as_of: date) -> bool:
    """Whether some instalment is still unpaid on its due date + 60 calendar days."""
    return any(s.step == "default" for s in arrears_steps(plan, payments, as_of))


# -- a dossier's loan, from its vote record and its disbursement ------------------------------------

def voted_loan_terms(voted: dict | None) -> dict | None:
    """The loan terms a vote record grants (`rules.instruments.LoanTerms.as_dict()` on its line,
    with the line's `phase`), the first line that has one; None when no loan was voted."""
    for line in (voted or {}).get("lines", []):
        if line.get("loan"):
            return line["loan"] | {"phase": line["phase"]}
    return None


def schedule_of(loan: dict) -> tuple[Instalment, ...]:
    """The schedule of a disbursed loan, from the terms and day kept with it (`principal`,
    `annual_rate`, `disbursed_on`, `deferral_months`, `instalments`)."""
    return schedule(Decimal(loan["principal"]), Decimal(loan["annual_rate"]), date.fromisoformat(loan["disbursed_on"]),
                    loan["deferral_months"], loan["instalments"])


def loan_figures(voted: dict | None, plan: Sequence[Instalment] | None, payments: Iterable[Repayment],
                 written_off: Decimal | None) -> dict | None:
    """The loan as SCENARIOS.md reports it (principal, disbursed, repaid, interest_paid,
    outstanding, instalments, next_due): None when no loan was voted; the voted principal, nothing
    disbursed, while `plan` is None (not disbursed); once written off, nothing more is due and the
    amount written off is said."""
    if plan is None:
        terms = voted_loan_terms(voted)
        return undisbursed_status(Decimal(terms["principal"])).as_dict() if terms else None
    figures = loan_status(plan, payments).as_dict()
    if written_off is not None:
        figures |= {"next_due": None, "written_off": str(_cents(Decimal(written_off)))}
    return figures


def default_cured(plan: Sequence[Instalment], payments: Iterable[Repayment], on: date) -> bool:
    """A loan in default is back up to date once no instalment is in default any more and
    nothing is due on that day."""
    history = list(payments)
    return not in_default(plan, history, on) and amount_due(plan, history, on) == ZERO
