"""Gross grant equivalent (GGE, équivalent-subvention brut) of a loan, SPEC §11.3: what de
minimis counts for a loan instead of its nominal.

Reference and discount rates
----------------------------
Commission communication on the revision of the method for setting the reference and discount
rates (OJ C 14, 19.1.2008, p. 6, « 2008/C 14/02 »): the reference rate is the EU base rate of the
Member State in force on the grant date plus a margin (100 basis points for a normal rating and
collateral; the programme may set another, ``margin=``); the discount rate is the base rate plus
100 basis points. The base rates are data (``programmes/regulations.toml``, table
``[[base_rates.FR]]``, each period with the Official Journal notice that published it); a grant
date no period covers is refused, rule ``reference_rate_unknown`` — never guessed.

The formula
-----------
On the schedule the loan would have if it were disbursed on the grant date (``rules.loans``:
d/3 interest-only quarters, then n constant principal shares, the last taking the remainder),
quarter k = 1 … d/3 + n contributes

    (reference rate − loan rate) × O_k × 1/4 × (1 + discount rate) ^ (−k/4)

where O_k is the principal outstanding during quarter k (before the principal paid at its end):
the interest saved in that quarter, paid at its end, discounted to the grant date with annual
compounding (the Communication's convention), the end of quarter k being k/4 years after the
grant (the schedule's due dates are grant date + 3k months; a quarter counts as a quarter of a
year whatever its days, as the schedule's interest does). Every quarter counts, the 0 € ones of a
zero-rate loan's deferral included (the interest saved is largest then). The sum is kept
unrounded, floored at 0 (a loan at or above the reference rate is no aid) and rounded half-up
to the cent at the end, once.

Worked example (golden 13's loan, granted 17/02/2021): 100 000 € at 0 %, 12 months' deferral,
16 instalments; base rate -0.45 % → reference = discount = 0.55 %; see docs/loans.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import TYPE_CHECKING

from rules import french
from rules.errors import InvalidInput, RuleViolation
from rules.loans import CENT, DECIMAL_CONTEXT, ZERO, _check_terms, quarter_outstandings

if TYPE_CHECKING:  # the programme's types only: programmes imports rules, not the reverse
    from programmes import BaseRatePeriod, Regulations

__all__ = ["GrantEquivalent", "base_rate_period", "discount_rate", "gross_grant_equivalent", "loan_gge",
           "reference_rate"]

_MINUS_QUARTER = Decimal("-0.25")


def base_rate_period(on: date, regulations: Regulations, country: str = "FR") -> BaseRatePeriod:
    """The base-rate period in force on ``on``, or ``reference_rate_unknown`` (field
    ``granted_on``) when no period of the regulations file covers that day."""
    if isinstance(on, datetime) or not isinstance(on, date):
        raise InvalidInput("granted_on", f"granted_on : une date (jour calendaire) est attendue, reçu « {on!r} ».")
    periods = getattr(regulations.base_rates, country, ())
    for period in periods:
        if period.covers(on):
            return period
    last = french.day(periods[-1].valid_until) if periods and periods[-1].valid_until else "aujourd'hui"
    known = (f" ({len(periods)} période(s) enregistrée(s), entre le {french.day(periods[0].valid_from)} "
             f"et le {last}, aucune ne couvre ce jour)" if periods else " (aucune période enregistrée)")
    raise RuleViolation(
        "reference_rate_unknown",
        f"Aucun taux de base de l'UE pour la France n'est enregistré pour le {french.day(on)}{known} : "
        "l'équivalent-subvention brut du prêt ne peut pas être calculé. Ajoutez la période et sa référence "
        "au Journal officiel dans le fichier des réglementations.",
        field="granted_on")


def reference_rate(on: date, regulations: Regulations, *, margin: Decimal | None = None) -> Decimal:
    """EU base rate for France in force on ``on`` + the margin (default: the regulations file's
    ``reference_margin``, 100 bps), as a fraction: 2020-06-16 → -0.0022 + 0.0100 = 0.0078."""
    period = base_rate_period(on, regulations)
    with localcontext(DECIMAL_CONTEXT):
        return period.rate + (regulations.base_rates.reference_margin if margin is None else margin)


def discount_rate(on: date, regulations: Regulations) -> Decimal:
    """EU base rate for France in force on ``on`` + 100 bps (the Communication's discount rate)."""
    period = base_rate_period(on, regulations)
    with localcontext(DECIMAL_CONTEXT):
        return period.rate + regulations.base_rates.discount_margin


@lru_cache(maxsize=64)
def _quarter_factor(discount: Decimal) -> Decimal:
    with localcontext(DECIMAL_CONTEXT):
        return (1 + discount) ** _MINUS_QUARTER


def gross_grant_equivalent(principal: Decimal, annual_rate: Decimal, deferral_months: int, instalments: int,
                           *, reference: Decimal, discount: Decimal) -> Decimal:
    """The GGE of the module's formula for given reference and discount rates (fractions)."""
    _check_terms(principal, annual_rate, deferral_months, instalments)
    for name, value in (("reference", reference), ("discount", discount)):
        if not isinstance(value, Decimal) or not value.is_finite() or not (-1 < value < 1):
            raise InvalidInput(name, f"{name} : un taux entre -1 et 1 est attendu, reçu « {value!r} ».")
    with localcontext(DECIMAL_CONTEXT):
        saved = reference - annual_rate
        if saved <= 0:
            return ZERO
        factor = _quarter_factor(discount)
        weight = Decimal(1)
        total = Decimal(0)
        for outstanding, _repaid in quarter_outstandings(principal, deferral_months, instalments):
            weight *= factor
            total += outstanding * weight
        return (total * saved / 4).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class GrantEquivalent:
    """A loan's GGE with what it was computed from, for the vote letter and the audit."""

    granted_on: date
    base_rate: Decimal           # fraction, e.g. -0.0045
    oj_reference: str
    reference_rate: Decimal
    discount_rate: Decimal
    amount: Decimal

    def as_dict(self) -> dict:
        return {"granted_on": self.granted_on.isoformat(), "base_rate": str(self.base_rate),
                "oj_reference": self.oj_reference, "reference_rate": str(self.reference_rate),
                "discount_rate": str(self.discount_rate), "gge": str(self.amount)}


def loan_gge(principal: Decimal, annual_rate: Decimal, deferral_months: int, instalments: int, granted_on: date,
             regulations: Regulations, *, margin: Decimal | None = None) -> GrantEquivalent:
    """The GGE of a loan voted on ``granted_on`` (SPEC §11.3), with the base rate it used.
    Refuses ``reference_rate_unknown`` when the regulations file has no base rate that day."""
    period = base_rate_period(granted_on, regulations)
    reference = reference_rate(granted_on, regulations, margin=margin)
    discount = discount_rate(granted_on, regulations)
    amount = gross_grant_equivalent(principal, annual_rate, deferral_months, instalments,
                                    reference=reference, discount=discount)
    return GrantEquivalent(granted_on, period.rate, period.oj_reference, reference, discount, amount)
