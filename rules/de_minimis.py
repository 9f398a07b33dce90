"""De minimis ceilings (SPEC §4 and §10): the regime is chosen by the grant date (the vote);
the aids counted are those of the single undertaking (the SIREN and its linked companies),
from the applicant's attestation plus the aids Usine itself granted."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from rules.money import ZERO

if TYPE_CHECKING:  # the programme's types only: programmes imports rules, not the reverse
    from programmes import DeMinimisRegime, Regulations


@dataclass(frozen=True)
class PriorAid:
    granted_on: date
    amount: Decimal
    source: str = "attestation"  # or "usine"


def regime_for(regulations: Regulations, granted_on: date) -> DeMinimisRegime:
    for regime in regulations.de_minimis:
        if regime.granted_from <= granted_on and (regime.granted_until is None or granted_on <= regime.granted_until):
            return regime
    raise LookupError(f"no de minimis regime covers {granted_on}")


def period_start(regime: DeMinimisRegime, granted_on: date) -> date:
    if regime.period == "fiscal_years":
        # The current and the previous (years - 1) fiscal years; fiscal years are calendar years.
        return date(granted_on.year - (regime.years - 1), 1, 1)
    # A rolling period of `years` years ending on the grant date.
    try:
        start = granted_on.replace(year=granted_on.year - regime.years)
    except ValueError:  # 29 February
        start = date(granted_on.year - regime.years, 2, 28)
    return date.fromordinal(start.toordinal() + 1)


@dataclass(frozen=True)
class Headroom:
    regulation: str
    ceiling: Decimal
    counted: Decimal
    period_start: date
    granted_on: date

    @property
    def remaining(self) -> Decimal:
        return max(self.ceiling - self.counted, ZERO)


def headroom(regulations: Regulations, *, granted_on: date, prior: list[PriorAid]) -> Headroom:
    regime = regime_for(regulations, granted_on)
    start = period_start(regime, granted_on)
    counted = sum((a.amount for a in prior if start <= a.granted_on <= granted_on), ZERO)
    return Headroom(regime.regulation, regime.ceiling, counted, start, granted_on)
