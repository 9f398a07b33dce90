"""Money rules of SPEC §4: pure functions over Decimal euros HT.

Each cut is returned as an `Adjustment` (rule id, phase, base, amount cut); each refusal is a
`RuleViolation` carrying its rule id. Amounts are rounded half-up to the cent at each line."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from rules import french
from rules.errors import InvalidInput, RuleViolation

if TYPE_CHECKING:  # the programme's types only: programmes imports rules, not the reverse
    from programmes import Programme

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(amount: Decimal) -> Decimal:
    """Round half-up to the cent (French public accounting)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(value, field: str, *, allow_zero: bool = True) -> Decimal:
    """A money amount from input: a string or Decimal with at most two decimals, never a float."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidInput(field, f"{field} : un montant s'écrit en texte (« 1200.00 »), jamais en nombre flottant.")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise InvalidInput(field, f"{field} : « {value} » n'est pas un montant en euros.") from None
    if not amount.is_finite():
        raise InvalidInput(field, f"{field} : « {value} » n'est pas un montant en euros.")
    if int(amount.as_tuple().exponent) < -2:  # finite: the exponent is an int
        raise InvalidInput(field, f"{field} : un montant a au plus deux décimales (reçu « {value} »).")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidInput(field, f"{field} : le montant doit être positif (reçu « {value} »).")
    return cents(amount)


def parse_days(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"{field} : un nombre de jours est un entier (reçu « {value} »).")
    if value < 0:
        raise InvalidInput(field, f"{field} : un nombre de jours ne peut pas être négatif (reçu {value}).")
    return value


@dataclass(frozen=True)
class Adjustment:
    rule: str
    phase: int
    base: str  # "expense" or "aid"
    amount: Decimal
    reason: str = ""

    def as_dict(self) -> dict:
        return {"rule": self.rule, "phase": self.phase, "base": self.base, "amount": str(self.amount)}


@dataclass(frozen=True)
class Quote:
    """A consultant's quote for one phase: days × day rate HT."""

    days: int
    day_rate: Decimal

    @classmethod
    def parse(cls, raw, field: str) -> "Quote":
        if not isinstance(raw, dict):
            raise InvalidInput(field, f"{field} : attendu {{days, day_rate}}.")
        if "days" not in raw:
            raise InvalidInput(f"{field}.days", f"{field}.days est obligatoire.")
        if "day_rate" not in raw:
            raise InvalidInput(f"{field}.day_rate", f"{field}.day_rate est obligatoire.")
        return cls(parse_days(raw["days"], f"{field}.days"),
                   parse_amount(raw["day_rate"], f"{field}.day_rate", allow_zero=False))

    def as_dict(self) -> dict:
        return {"days": self.days, "day_rate": str(self.day_rate)}


def check_phase_days(programme: Programme, phase_number: int, days: int) -> None:
    """A service lasts at least `min_days`; phase 2 at most `max_days` (refusals)."""
    phase = programme.phase(phase_number)
    min_days = programme.require(phase.min_days, f"phases[{phase_number}].min_days")
    if days < min_days:
        raise RuleViolation(
            "day_minimum",
            f"Phase {phase_number} : {days} jour(s) pour un minimum de {min_days} jours.",
            field=f"phase{phase_number}.days",
        )
    if phase.max_days is not None and days > phase.max_days:
        raise RuleViolation(
            "day_maximum",
            f"Phase {phase_number} : {days} jours pour un maximum de {phase.max_days} jours.",
            field=f"phase{phase_number}.days",
        )


@dataclass(frozen=True)
class PhaseLine:
    phase: int
    days: int
    day_rate: Decimal
    capped_day_rate: Decimal
    eligible_expense: Decimal
    rate: Decimal
    aid: Decimal  # the subsidy of the line
    legal_basis: str
    # A line with instruments (SPEC §11.2): the amount of each ("subsidy", "loan"), the loan's
    # terms (rules.instruments.LoanTerms.as_dict()) and whether its expense is days or investment.
    instruments: dict | None = None
    loan: dict | None = None
    expense_kind: str | None = None

    @property
    def loan_principal(self) -> Decimal:
        return Decimal(self.loan["principal"]) if self.loan else ZERO

    def as_dict(self) -> dict:
        out = {
            "phase": self.phase, "days": self.days, "day_rate": str(self.day_rate),
            "capped_day_rate": str(self.capped_day_rate),
            "eligible_expense": str(self.eligible_expense), "rate": str(self.rate),
            "aid": str(self.aid), "legal_basis": self.legal_basis,
        }
        if self.instruments is not None:
            out |= {"instruments": self.instruments, "loan": self.loan, "expense_kind": self.expense_kind}
        return out


@dataclass(frozen=True)
class AidBreakdown:
    lines: tuple[PhaseLine, ...]
    adjustments: tuple[Adjustment, ...] = field(default=())
    de_minimis_regulation: str | None = None
    de_minimis_headroom: Decimal | None = None
    # Lines with instruments report {"subsidy", "loan", "total"}; phases report {"phase1", …}.
    by_instrument: bool = False

    @property
    def subsidy_total(self) -> Decimal:
        """What is granted as subsidies (paid out, never repaid)."""
        return sum((line.aid for line in self.lines), ZERO)

    @property
    def loan_total(self) -> Decimal:
        return sum((line.loan_principal for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        """Subsidies and loans voted (a loan at its nominal: what the council decides)."""
        return self.subsidy_total + self.loan_total

    def aid(self, phase: int) -> Decimal:
        for line in self.lines:
            if line.phase == phase:
                return line.aid
        return ZERO

    def line(self, phase: int) -> PhaseLine | None:
        for line in self.lines:
            if line.phase == phase:
                return line
        return None

    def as_dict(self) -> dict:
        return aid_figures(self.to_record())

    def to_record(self) -> dict:
        record: dict[str, object] = {
            "lines": [line.as_dict() for line in self.lines],
            "adjustments": [a.as_dict() | {"reason": a.reason} for a in self.adjustments],
            "total": str(self.total),
            "de_minimis_regulation": self.de_minimis_regulation,
            "de_minimis_headroom": None if self.de_minimis_headroom is None else str(self.de_minimis_headroom),
        }
        if self.by_instrument:
            record |= {"by_instrument": True, "subsidy_total": str(self.subsidy_total),
                       "loan_total": str(self.loan_total)}
        return record


def aid_figures(record: dict) -> dict:
    """The aid as scenarios, the API and the pages read it, from a proposal or vote record:
    {"phase1", "phase2", "total"} for phases, {"subsidy", "loan", "total"} for instrument lines
    (each key the line has)."""
    if record.get("by_instrument"):
        out: dict[str, str] = {}
        for line in record["lines"]:
            for key in ("subsidy", "loan"):
                if key in (line.get("instruments") or {}):
                    out[key] = str(Decimal(out.get(key, "0")) + Decimal(line["instruments"][key]))
        out = {k: str(cents(Decimal(v))) for k, v in out.items()}
        out["total"] = record["total"]
        return out
    out = {f"phase{line['phase']}": line["aid"] for line in record["lines"]}
    out["total"] = record["total"]
    return out


def _cut_from_latest(amounts: dict[int, Decimal], excess: Decimal, phases: list[int]) -> dict[int, Decimal]:
    """How much to cut from each phase, latest phase first (programme choice `latest`)."""
    cuts: dict[int, Decimal] = {}
    for number in sorted(phases, reverse=True):
        if excess <= 0:
            break
        cut = min(amounts[number], excess)
        if cut > 0:
            cuts[number] = cut
            excess -= cut
    return cuts


def phase_day_rate_cap(programme: Programme, phase_number: int) -> Decimal:
    """A phase's own day-rate cap, else the programme's."""
    phase = programme.phase(phase_number)
    if phase.day_rate_cap is not None:
        return phase.day_rate_cap
    return programme.require(programme.money.day_rate_cap, "money.day_rate_cap")


def legal_basis(programme: Programme, phase_number: int, size_class: str) -> str:
    basis = getattr(programme.phase(phase_number).legal_basis, size_class)
    return programme.require(basis, f"phases[{phase_number}].legal_basis.{size_class}")


def compute_aid(
    programme: Programme,
    *,
    size_class: str,
    quotes: dict[int, Quote],
    equity: Decimal,
    de_minimis_headroom: Decimal | None = None,
    de_minimis_regulation: str | None = None,
) -> AidBreakdown:
    """Eligible expense, then aid, per phase, with every cap of the programme.

    Order (SPEC §4): day-rate cap and pathway cap cut the eligible expense; the rate gives the
    aid; the equity cap, then the de minimis headroom, cut the aid — each cut from the latest
    phase first. `de_minimis_headroom` is what the single undertaking may still receive under
    de minimis at the grant date; None means "not computed" (no de minimis line, or caller
    checks later)."""
    money = programme.money
    adjustments: list[Adjustment] = []
    expense: dict[int, Decimal] = {}
    capped_rates: dict[int, Decimal] = {}
    for number in sorted(quotes):
        q = quotes[number]
        cap = phase_day_rate_cap(programme, number)
        capped = min(q.day_rate, cap)
        capped_rates[number] = capped
        expense[number] = cents(q.days * capped)
        if q.day_rate > cap:
            cut = cents(q.days * q.day_rate) - expense[number]
            adjustments.append(Adjustment("day_rate_cap", number, "expense", cut,
                                          f"taux journalier {q.day_rate} € plafonné à {cap} € HT"))
    pathway_cap = programme.require(money.pathway_cap, "money.pathway_cap") if money.has_pathway_cap else None
    total_expense = sum(expense.values(), ZERO)
    if pathway_cap is not None and total_expense > pathway_cap:
        for number, cut in _cut_from_latest(expense, total_expense - pathway_cap, list(expense)).items():
            expense[number] -= cut
            adjustments.append(Adjustment("pathway_cap", number, "expense", cut,
                                          f"parcours plafonné à {pathway_cap} € HT"))
    aid: dict[int, Decimal] = {}
    for number in expense:
        rate = programme.require(programme.phase(number).rate, f"phases[{number}].rate")
        aid[number] = cents(expense[number] * rate)
    if money.equity_cap:
        total_aid = sum(aid.values(), ZERO)
        if total_aid > equity:
            for number, cut in _cut_from_latest(aid, total_aid - equity, list(aid)).items():
                aid[number] -= cut
                adjustments.append(Adjustment("equity_cap", number, "aid", cut,
                                              f"aide plafonnée aux fonds propres ({equity} €)"))
    bases = {number: legal_basis(programme, number, size_class) for number in aid}
    if de_minimis_headroom is not None:
        dm_phases = [n for n in aid if bases[n] == "de_minimis"]
        dm_total = sum((aid[n] for n in dm_phases), ZERO)
        if dm_phases and dm_total > 0:
            if de_minimis_headroom <= 0:
                raise RuleViolation(
                    "de_minimis",
                    f"Plafond de minimis ({de_minimis_regulation}) atteint : aucune marge disponible.",
                    field="de_minimis_prior",
                )
            if dm_total > de_minimis_headroom:
                for number, cut in _cut_from_latest(aid, dm_total - de_minimis_headroom, dm_phases).items():
                    aid[number] -= cut
                    adjustments.append(Adjustment(
                        "de_minimis", number, "aid", cut,
                        f"aide ramenée à la marge de minimis disponible ({de_minimis_headroom} €, règlement {de_minimis_regulation})"))
    lines = tuple(
        PhaseLine(n, quotes[n].days, quotes[n].day_rate, capped_rates[n], expense[n],
                  programme.require(programme.phase(n).rate, f"phases[{n}].rate"), aid[n], bases[n])
        for n in sorted(aid)
    )
    return AidBreakdown(lines, tuple(adjustments), de_minimis_regulation, de_minimis_headroom)


def advance_cap(programme: Programme, phase_number: int, voted_aid: Decimal) -> Decimal:
    rate = programme.require(programme.phase(phase_number).advance_max_rate,
                             f"phases[{phase_number}].advance_max_rate")
    return cents(voted_aid * rate)


def check_advance(programme: Programme, *, phase: int, amount: Decimal, voted_aid: Decimal,
                  advances_so_far: Decimal) -> None:
    """All advances of a phase together stay within `advance_max_rate` × the voted aid."""
    cap = advance_cap(programme, phase, voted_aid)
    if cap == 0:
        raise RuleViolation("advance_cap", f"La phase {phase} ne prévoit pas d'avance : paiement unique à son terme.",
                            field="phase")
    if advances_so_far + amount > cap:
        rest = max(cap - advances_so_far, ZERO)
        raise RuleViolation(
            "advance_cap",
            f"Avance de {amount} € refusée : les avances de la phase {phase} sont plafonnées à {cap} € "
            f"({programme.require(programme.phase(phase).advance_max_rate, 'advance_max_rate') * 100:.0f} % "
            f"de l'aide votée), reste possible {rest} €.",
            field="amount",
        )


def invoice_date(raw, field: str, keys: tuple[str, ...]) -> date:
    """An invoice line's shape checked (an object with every key of `keys`, each one named when
    it is missing) and its date read (AAAA-MM-JJ): the part every kind of invoice line shares."""
    if not isinstance(raw, dict):
        raise InvalidInput(field, f"{field} : attendu {{{', '.join(keys)}}}.")
    for key in keys:
        if key not in raw:
            raise InvalidInput(f"{field}.{key}", f"{field}.{key} est obligatoire.")
    try:
        return date.fromisoformat(str(raw["date"]))
    except ValueError:
        raise InvalidInput(f"{field}.date", f"{field}.date : « {raw['date']} » n'est pas une date AAAA-MM-JJ.") from None


@dataclass(frozen=True)
class InvoiceLine:
    date: date
    days: int
    day_rate: Decimal

    @classmethod
    def parse(cls, raw, field: str) -> "InvoiceLine":
        d = invoice_date(raw, field, ("date", "days", "day_rate"))
        return cls(d, parse_days(raw["days"], f"{field}.days"),
                   parse_amount(raw["day_rate"], f"{field}.day_rate", allow_zero=False))

    def as_dict(self) -> dict:
        return {"date": self.date.isoformat(), "days": self.days, "day_rate": str(self.day_rate)}


@dataclass(frozen=True)
class ClaimAssessment:
    """A final claim checked against the rules: what counts, what does not and why."""

    phase: int
    claimed_expense: Decimal
    eligible_days: int
    eligible_expense: Decimal
    justified_aid: Decimal   # rate × eligible expense, never above the voted aid
    adjustments: tuple[Adjustment, ...]
    excluded_lines: tuple[dict, ...]

    def to_record(self) -> dict:
        return {
            "phase": self.phase, "claimed_expense": str(self.claimed_expense),
            "eligible_days": self.eligible_days, "eligible_expense": str(self.eligible_expense),
            "justified_aid": str(self.justified_aid),
            "adjustments": [a.as_dict() | {"reason": a.reason} for a in self.adjustments],
            "excluded_lines": list(self.excluded_lines),
        }


def assess_final_claim(programme: Programme, *, phase: int, invoices: list[InvoiceLine],
                       voted_aid: Decimal, voted_expense: Decimal, window=None) -> ClaimAssessment:
    """Pro rata of justified expense: each invoice line at min(day rate, cap); lines dated after
    the expense cut-off (Europe/Paris calendar day, inclusive) do not count — they are cut, never
    refused, even when every line is late (the justified aid is then 0, and what the phase
    received is recovered); the service must have lasted the phase's minimum days (the days
    invoiced, whenever they were worked); the aid never exceeds what was voted."""
    cap = phase_day_rate_cap(programme, phase)
    # `window` (rules.instruments.ExpenseWindow): the dossier's own expense window where the
    # programme counts it from each dossier; else the programme's fixed cut-off.
    cutoff = window.ends_on if window is not None else programme.money.expense_cutoff
    rate = programme.require(programme.phase(phase).rate, f"phases[{phase}].rate")
    min_days = programme.require(programme.phase(phase).min_days, f"phases[{phase}].min_days")
    adjustments: list[Adjustment] = []
    excluded: list[dict] = []
    claimed = ZERO
    eligible = ZERO
    days = 0
    cutoff_cut = ZERO
    rate_cut = ZERO
    for line in invoices:
        gross = cents(line.days * line.day_rate)
        claimed += gross
        capped = cents(line.days * min(line.day_rate, cap))
        outside = window.excludes(line.date) if window is not None else (
            f"dépense postérieure à la date limite du {french.day(cutoff)}"
            if cutoff is not None and line.date > cutoff else None)
        if outside:
            cutoff_cut += capped
            excluded.append({"date": line.date.isoformat(), "amount": str(capped), "reason": outside})
            continue
        rate_cut += gross - capped
        eligible += capped
        days += line.days
    if rate_cut > 0:
        adjustments.append(Adjustment("day_rate_cap", phase, "expense", rate_cut,
                                      f"taux journalier plafonné à {cap} € HT"))
    if cutoff_cut > 0:
        adjustments.append(Adjustment("expense_cutoff", phase, "expense", cutoff_cut,
                                      f"dépenses après le {french.day(cutoff)} non éligibles" if cutoff
                                      else "dépenses hors de la période d'éligibilité"))
    performed = sum(line.days for line in invoices)
    if performed < min_days:
        raise RuleViolation("day_minimum",
                            f"Phase {phase} : {performed} jour(s) facturé(s) pour un minimum de {min_days} jours.",
                            field="invoices")
    justified_expense = min(eligible, voted_expense)
    justified_aid = min(cents(justified_expense * rate), voted_aid)
    return ClaimAssessment(phase, claimed, days, eligible, justified_aid, tuple(adjustments), tuple(excluded))


_FRENCH_AMOUNT = re.compile(r"^\d+(?:[.,]\d+)?$")


def parse_french_amount(text: str, field: str, *, allow_zero: bool = False) -> Decimal:
    """An amount as a person types it in a French form: « 12 500,50 », « 12500,50 », « 12 500,50 € »
    (spaces, no-break spaces and the euro sign ignored; the decimal comma, or a point) — then the
    checks of `parse_amount` (two decimals at most, positive). « 12.500,50 » is refused: one
    decimal separator, never a thousands point."""
    if not isinstance(text, str):
        raise InvalidInput(field, f"{field} : un montant est attendu.")
    compact = "".join(text.replace("€", "").split()).replace("\u202f", "").replace("\u00a0", "")
    if not compact:
        raise InvalidInput(field, f"{field} : le montant est obligatoire.")
    if not _FRENCH_AMOUNT.match(compact):
        raise InvalidInput(field, f"{field} : « {text.strip()} » n'est pas un montant en euros "
                                  "(écrire par exemple 12 500,50).")
    return parse_amount(compact.replace(",", "."), field, allow_zero=allow_zero)
