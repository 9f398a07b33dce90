"""Paying and settling a voted dossier (SPEC §4, §11.3), pure: what a claim is paid (or what is
recovered), when every subsidy and loan is settled, what is cancelled at closing, the expense
window and the payment deadline.

Each function takes plain values — the vote record as `rules.money.AidBreakdown.to_record()`
wrote it, amounts in Decimal, days — and is called both by the commands of
`services.commands.payments` (which read and write the tables) and by the audit replay
(`services.audit.replay`, which folds the events): the arithmetic lives here once."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable

from rules.calendar import add_months, deadline
from rules.instruments import ExpenseWindow
from rules.loans import voted_loan_terms
from rules.money import ZERO


def voted_line(voted: dict | None, phase: int) -> dict | None:
    """The voted line of a phase, or None. A dossier of one line may call it 1 (a
    Nouvelle-Aquitaine aid dossier carries out the programme's line 2 but has one phase of its own)."""
    lines = (voted or {}).get("lines", [])
    for line in lines:
        if line["phase"] == phase:
            return line
    if phase == 1 and len(lines) == 1:
        return lines[0]
    return None


def invoices_in_days(voted: dict | None, phase: int) -> bool:
    """Whether a final claim's invoices are days × day rate (consulting) rather than amounts
    (investment): always on a dossier voted by phases; on a line with instruments, as its expense
    is counted (`expense_kind` "days") — the first line's when the phase named was not voted."""
    record = voted or {}
    if not record.get("by_instrument"):
        return True
    line = voted_line(record, phase)
    if line is None:
        lines = record.get("lines", [])
        return bool(lines) and lines[0].get("expense_kind") == "days"
    return line.get("expense_kind") == "days"


@dataclass(frozen=True)
class PaymentDue:
    """What paying a claim gives: an amount paid (zero or more), or a recovery order."""

    amount: Decimal
    recovery: Decimal | None = None


def payment_due(*, kind: str, claimed: Decimal, justified_aid: Decimal | None, voted_aid: Decimal,
                net_paid_before: Decimal) -> PaymentDue:
    """An advance is paid as claimed; a final claim as the aid justified minus what the phase
    already received (net of recoveries); never more than voted for the phase, whatever happened
    before. Below zero, nothing is paid and the difference is a recovery order."""
    if kind == "advance":
        amount = claimed
    else:
        amount = (justified_aid if justified_aid is not None else ZERO) - net_paid_before
    amount = min(amount, voted_aid - net_paid_before)
    if amount < 0:
        return PaymentDue(ZERO, -amount)
    return PaymentDue(amount)


def subsidies_settled(voted: dict | None, finals_paid: Iterable[int]) -> bool:
    """A vote was recorded and every voted phase's final claim is paid — on a line with
    instruments, every line whose subsidy is not zero (a loan-only line has no claim to make).
    Nothing voted: nothing is settled (a dossier without a vote never closes as paid)."""
    record = voted or {}
    lines = record.get("lines", [])
    if not lines:
        return False
    if record.get("by_instrument"):
        lines = [line for line in lines if Decimal(line["aid"]) > 0]
    return {line["phase"] for line in lines} <= set(finals_paid)


def loan_settled(voted: dict | None, outstanding: Decimal | None) -> bool:
    """No loan voted, or the loan disbursed (`outstanding` is None while it is not) and its
    principal repaid."""
    if voted_loan_terms(voted) is None:
        return True
    return outstanding is not None and outstanding == 0


def cancelled_remainder(aid_total: Decimal | None, net_paid: Decimal) -> Decimal:
    """At closing, what was voted in subsidies and not paid (net of recoveries) is cancelled;
    never below zero."""
    return max((aid_total or ZERO) - net_paid, ZERO)


def expense_window(*, months_after_vote: int | None, expense_cutoff: date | None, submitted_on: date,
                   voted_on: date | None) -> ExpenseWindow:
    """The days an expense of a dossier counts: the programme's fixed cut-off, or from the
    dossier's submission (an aid dossier's opening) to N months after its vote (no end before
    the vote)."""
    if months_after_vote is not None:
        ends = add_months(voted_on, months_after_vote) if voted_on else None
        return ExpenseWindow(submitted_on, ends)
    return ExpenseWindow(None, expense_cutoff)


def payment_deadline(expenses_end_on: date | None, months: int | None, *,
                     shift_to_working_day: bool) -> date | None:
    """The last day to claim the balance: the expense cut-off plus the programme's months (moved to
    the next working day when the programme says so); None without either."""
    if expenses_end_on is None or months is None:
        return None
    return deadline(add_months(expenses_end_on, months), 0, shift_to_working_day=shift_to_working_day)


def de_minimis_granted(voted: dict | None) -> list[Decimal]:
    """The amounts a vote grants under de minimis, in line order: each line's subsidy on that
    basis (when not zero), and a loan on that basis at its gross grant equivalent — never at its
    nominal (SPEC §11.3) — when not zero."""
    out: list[Decimal] = []
    for line in (voted or {}).get("lines", []):
        if line.get("legal_basis") == "de_minimis" and Decimal(line["aid"]) > 0:
            out.append(Decimal(line["aid"]))
        loan = line.get("loan")
        if loan and loan.get("legal_basis") == "de_minimis" and loan.get("gge"):
            gge = Decimal(loan["gge"]["gge"])
            if gge > 0:
                out.append(gge)
    return out
