"""Aid lines with instruments (SPEC §11.2): a subsidy and/or a loan per line, each with its own
caps, an optional combined cap, and investment expenses given as amounts. Pure functions over
Decimal euros HT; every cut is an `Adjustment`, every refusal a `RuleViolation`.

The order of the caps, for each line: the eligible expense (days × capped day rate, or the sum
of the investment amounts); each instrument's own cap (its rate of the eligible expense — the
mid-cap or consulting rate where the programme gives one — and its amount), which cuts what was
asked (`subsidy_cap`, `loan_cap`); the line's combined cap, cut from the subsidy first
(`subsidy_cap`), then from the loan (`loan_cap`); the equity cap on the subsidy where the
programme sets one; last, de minimis at the grant date, where the subsidy counts at its amount
and the loan at its gross grant equivalent (`rules.gge`): cut from the subsidy first, then from
the loan's principal (**choice**)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Callable

from rules.errors import InvalidInput, RuleViolation
from rules.french import day as fr_day
from rules.french import percent
from rules.money import (
    ZERO,
    Adjustment,
    AidBreakdown,
    PhaseLine,
    Quote,
    cents,
    check_phase_days,
    invoice_date,
    parse_amount,
    parse_days,
    phase_day_rate_cap,
)
from rules.text import check_text

if TYPE_CHECKING:  # the programme's types only: programmes imports rules, not the reverse
    from programmes import Instrument, Phase, Programme

KEYS = ("subsidy", "loan")


def key_of(instrument: Instrument) -> str:
    """Scenarios and the API call a line's loan `loan`, whichever kind the programme gives it."""
    return "loan" if instrument.is_loan else "subsidy"


@dataclass(frozen=True)
class ExpenseItem:
    label: str
    amount: Decimal

    def as_dict(self) -> dict:
        return {"label": self.label, "amount": str(self.amount)}


def parse_expenses(raw, field: str) -> tuple[ExpenseItem, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(field, f"{field} : au moins une dépense {{label, amount}} est attendue.")
    if len(raw) > 200:
        raise InvalidInput(field, f"{field} : 200 lignes de dépense au plus.")
    out = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict) or "amount" not in item:
            raise InvalidInput(where, f"{where} : {{label, amount}} attendu.")
        label = item.get("label", "")
        if not isinstance(label, str) or len(label) > 200:
            raise InvalidInput(f"{where}.label", f"{where}.label : un libellé de 200 caractères au plus.")
        check_text(label, f"{where}.label")
        out.append(ExpenseItem(label.strip(), parse_amount(item["amount"], f"{where}.amount", allow_zero=False)))
    return tuple(out)


def parse_asked(raw, phase: Phase, field: str = "instruments") -> dict[str, Decimal] | None:
    """The split the officer (or company) asks: {"subsidy": amount, "loan": amount}; None = each
    instrument at its cap. An instrument the line does not have is refused, naming it."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput(field, f"{field} : attendu {{\"subsidy\": montant, \"loan\": montant}}.")
    have = {key_of(i) for i in phase.instruments}
    out = {}
    for key, value in raw.items():
        if key not in KEYS or key not in have:
            names = ", ".join(sorted(have)) or "aucun"
            raise InvalidInput(f"{field}.{key}", f"{field}.{key} : la ligne « {phase.name} » n'a pas cet "
                               f"instrument (instruments : {names}).")
        out[key] = parse_amount(value, f"{field}.{key}")
    return out


@dataclass(frozen=True)
class LineRequest:
    """What a line's dossier asks: consulting days or investment expenses, and the split."""

    phase: int
    quote: Quote | None = None
    expenses: tuple[ExpenseItem, ...] | None = None
    asked: dict[str, Decimal] | None = None

    def to_record(self) -> dict:
        return {"phase": self.phase,
                "quote": self.quote.as_dict() if self.quote else None,
                "expenses": [e.as_dict() for e in self.expenses] if self.expenses is not None else None,
                "asked": {k: str(v) for k, v in self.asked.items()} if self.asked is not None else None}

    @classmethod
    def from_record(cls, record: dict) -> "LineRequest":
        quote = record.get("quote")
        expenses = record.get("expenses")
        asked = record.get("asked")
        return cls(record["phase"],
                   Quote(quote["days"], Decimal(quote["day_rate"])) if quote else None,
                   tuple(ExpenseItem(e["label"], Decimal(e["amount"])) for e in expenses) if expenses is not None else None,
                   {k: Decimal(v) for k, v in asked.items()} if asked is not None else None)


def parse_request(programme: Programme, phase_number: int, *, days=None, expenses=None, instruments=None,
                  days_field: str = "phase1", expenses_field: str = "expenses") -> LineRequest:
    phase = programme.phase(phase_number)
    if days is not None and expenses is not None:
        raise InvalidInput(expenses_field, f"{expenses_field} : des jours de conseil ou des dépenses d'investissement, pas les deux.")
    if days is not None:
        if phase.expense == "investment":
            raise InvalidInput(days_field, f"{days_field} : la ligne « {phase.name} » finance des investissements "
                               f"(dépenses {{label, amount}}), pas des jours de conseil.")
        quote = Quote.parse(days, days_field)
        return LineRequest(phase_number, quote=quote, asked=parse_asked(instruments, phase))
    if expenses is not None:
        if phase.expense == "days":
            raise InvalidInput(expenses_field, f"{expenses_field} : la ligne « {phase.name} » finance des jours de "
                               f"conseil ({{days, day_rate}}), pas des dépenses d'investissement.")
        return LineRequest(phase_number, expenses=parse_expenses(expenses, expenses_field),
                           asked=parse_asked(instruments, phase))
    wanted = "{days, day_rate}" if phase.expense == "days" else "des dépenses {label, amount}"
    field = days_field if phase.expense == "days" else expenses_field
    raise InvalidInput(field, f"{field} : la ligne « {phase.name} » attend {wanted}.")


def day_rate_cap(programme: Programme, phase: Phase) -> Decimal:
    return phase_day_rate_cap(programme, phase.number)


def check_request_days(programme: Programme, request: LineRequest, field: str) -> None:
    if request.quote is not None:
        try:
            check_phase_days(programme, request.phase, request.quote.days)
        except RuleViolation as exc:
            raise RuleViolation(exc.rule, str(exc), field=f"{field}.days") from None


def _eligible_expense(programme: Programme, phase: Phase, request: LineRequest,
                      adjustments: list[Adjustment]) -> Decimal:
    if request.quote is not None:
        q = request.quote
        cap = day_rate_cap(programme, phase)
        expense = cents(q.days * min(q.day_rate, cap))
        if q.day_rate > cap:
            adjustments.append(Adjustment("day_rate_cap", phase.number, "expense", cents(q.days * q.day_rate) - expense,
                                          f"taux journalier {q.day_rate} € plafonné à {cap} € HT"))
        return expense
    return sum((e.amount for e in request.expenses or ()), ZERO)


def instrument_rate(instrument: Instrument, *, size_class: str, consulting: bool, programme: Programme,
                    phase: Phase) -> Decimal:
    if consulting and instrument.consulting_rate is not None:
        return instrument.consulting_rate
    if size_class == "eti" and instrument.rate_eti is not None:
        return instrument.rate_eti
    return programme.require(instrument.rate, f"phases[{phase.number}].instruments.{instrument.kind}.rate")


def instrument_ceiling(instrument: Instrument, expense: Decimal, rate: Decimal) -> Decimal:
    ceiling = cents(expense * rate)
    if instrument.max_amount is not None:
        ceiling = min(ceiling, instrument.max_amount)
    return ceiling


@dataclass(frozen=True)
class LoanTerms:
    kind: str
    principal: Decimal
    annual_rate: Decimal
    deferral_months: int
    instalments: int
    legal_basis: str
    gge: dict | None = None  # rules.gge.GrantEquivalent.as_dict() at the grant date

    def as_dict(self) -> dict:
        return {"kind": self.kind, "principal": str(self.principal), "annual_rate": str(self.annual_rate),
                "deferral_months": self.deferral_months, "instalments": self.instalments,
                "legal_basis": self.legal_basis, "gge": self.gge}


def legal_basis_of(instrument: Instrument, size_class: str, programme: Programme, phase: Phase) -> str:
    basis = getattr(instrument.legal_basis, size_class)
    return programme.require(basis, f"phases[{phase.number}].instruments.{instrument.kind}.legal_basis.{size_class}")


GrantEquivalentOf = Callable[[LoanTerms], dict]


def compute_line_aid(programme: Programme, *, size_class: str, request: LineRequest, equity: Decimal,
                     de_minimis_headroom: Decimal | None = None, de_minimis_regulation: str | None = None,
                     gge_of: GrantEquivalentOf | None = None) -> AidBreakdown:
    """The subsidy and loan of one line, every cap applied (see the module's docstring).

    `gge_of(terms)` gives the loan's GGE record at the grant date (rules.gge.loan_gge(...).as_dict());
    None leaves it uncomputed (an estimate before the proposal). With a headroom, the de minimis
    ceiling is applied on the subsidy and the loan's GGE."""
    phase = programme.phase(request.phase)
    adjustments: list[Adjustment] = []
    expense = _eligible_expense(programme, phase, request, adjustments)
    consulting = request.quote is not None
    amounts: dict[str, Decimal] = {}
    rates: dict[str, Decimal] = {}
    for instrument in phase.instruments:
        key = key_of(instrument)
        rate = instrument_rate(instrument, size_class=size_class, consulting=consulting, programme=programme, phase=phase)
        rates[key] = rate
        ceiling = instrument_ceiling(instrument, expense, rate)
        requested = cents(expense * rate) if request.asked is None else request.asked.get(key, ZERO)
        amounts[key] = min(requested, ceiling)
        if requested > amounts[key]:
            adjustments.append(Adjustment(f"{key}_cap", phase.number, "aid", requested - amounts[key],
                                          f"{'prêt plafonné' if key == 'loan' else 'subvention plafonnée'} à {ceiling} € "
                                          f"({percent(rate)} de {expense} € de dépense éligible"
                                          + (f", {instrument.max_amount} € au plus)" if instrument.max_amount else ")")))
    if phase.combined_cap_rate is not None:
        limit = cents(expense * phase.combined_cap_rate)
        over = sum(amounts.values(), ZERO) - limit
        for key in ("subsidy", "loan"):
            if over <= 0 or key not in amounts:
                continue
            cut = min(over, amounts[key])
            if cut > 0:
                amounts[key] -= cut
                over -= cut
                adjustments.append(Adjustment(f"{key}_cap", phase.number, "aid", cut,
                                              f"prêt et subvention ensemble plafonnés à {limit} € "
                                              f"({percent(phase.combined_cap_rate)} de la dépense éligible)"))
    if programme.money.equity_cap and amounts.get("subsidy", ZERO) > equity:
        cut = amounts["subsidy"] - equity
        amounts["subsidy"] = equity
        adjustments.append(Adjustment("equity_cap", phase.number, "aid", cut, f"aide plafonnée aux fonds propres ({equity} €)"))

    subsidy_instrument = phase.instrument_of("subsidy")
    loan_instrument = phase.loan
    subsidy_basis = legal_basis_of(subsidy_instrument, size_class, programme, phase) if subsidy_instrument else None
    loan_terms = None
    if loan_instrument is not None and amounts.get("loan", ZERO) > 0:
        loan_terms = LoanTerms(loan_instrument.kind, amounts["loan"], loan_instrument.annual_rate,
                               loan_instrument.deferral_months,
                               programme.require(loan_instrument.instalments, f"phases[{phase.number}].instruments.loan.instalments"),
                               legal_basis_of(loan_instrument, size_class, programme, phase))
        if gge_of is not None:
            loan_terms = _with_gge(loan_terms, gge_of)
    if de_minimis_headroom is not None:
        amounts, loan_terms = _apply_de_minimis(phase, amounts, loan_terms, subsidy_basis, de_minimis_headroom,
                                                de_minimis_regulation, gge_of, adjustments)
    subsidy = amounts.get("subsidy", ZERO)
    line = PhaseLine(phase.number, request.quote.days if request.quote else 0,
                     request.quote.day_rate if request.quote else ZERO,
                     min(request.quote.day_rate, day_rate_cap(programme, phase)) if request.quote else ZERO,
                     expense, rates.get("subsidy", ZERO), subsidy, subsidy_basis or "none",
                     instruments={k: str(amounts[k] if k != "loan" else (loan_terms.principal if loan_terms else ZERO))
                                  for k in amounts},
                     loan=loan_terms.as_dict() if loan_terms else None,
                     expense_kind="days" if request.quote else "investment")
    return AidBreakdown((line,), tuple(adjustments), de_minimis_regulation, de_minimis_headroom, by_instrument=True)


def _with_gge(terms: LoanTerms, gge_of: GrantEquivalentOf) -> LoanTerms:
    return LoanTerms(terms.kind, terms.principal, terms.annual_rate, terms.deferral_months, terms.instalments,
                     terms.legal_basis, gge_of(terms))


def _apply_de_minimis(phase: Phase, amounts: dict[str, Decimal], loan: LoanTerms | None, subsidy_basis: str | None,
                      headroom: Decimal, regulation: str | None, gge_of: GrantEquivalentOf | None,
                      adjustments: list[Adjustment]) -> tuple[dict[str, Decimal], LoanTerms | None]:
    subsidy_counts = subsidy_basis == "de_minimis" and amounts.get("subsidy", ZERO) > 0
    loan_counts = loan is not None and loan.legal_basis == "de_minimis" and loan.gge is not None
    gge = Decimal(loan.gge["gge"]) if loan is not None and loan.gge is not None and loan_counts else ZERO
    counted = (amounts["subsidy"] if subsidy_counts else ZERO) + gge
    if counted <= 0:
        return amounts, loan
    if headroom <= 0:
        raise RuleViolation("de_minimis", f"Plafond de minimis ({regulation}) atteint : aucune marge disponible.",
                            field="de_minimis_prior")
    if counted <= headroom:
        return amounts, loan
    excess = counted - headroom
    amounts = dict(amounts)
    if subsidy_counts:
        cut = min(excess, amounts["subsidy"])
        amounts["subsidy"] -= cut
        excess -= cut
        adjustments.append(Adjustment("de_minimis", phase.number, "aid", cut,
                                      f"subvention ramenée à la marge de minimis disponible ({headroom} €, règlement {regulation})"))
    if excess > 0 and loan is not None and loan_counts and gge_of is not None:
        # The GGE is proportional to the principal: scale it down to what fits, then to the euro
        # below until the recomputed GGE fits the room left.
        room = gge - excess
        principal = (loan.principal * room / gge).quantize(Decimal("1"), rounding=ROUND_DOWN) if room > 0 else ZERO
        while principal > 0:
            trial = _with_gge(LoanTerms(loan.kind, cents(principal), loan.annual_rate, loan.deferral_months,
                                        loan.instalments, loan.legal_basis), gge_of)
            assert trial.gge is not None  # _with_gge sets it
            if Decimal(trial.gge["gge"]) <= room:
                break
            principal -= 1
        cut = loan.principal - cents(principal)
        adjustments.append(Adjustment("de_minimis", phase.number, "aid", cut,
                                      f"prêt réduit pour que son équivalent-subvention tienne dans la marge de minimis "
                                      f"({headroom} €, règlement {regulation})"))
        if principal <= 0:
            loan = None
            amounts.pop("loan", None)
        else:
            loan = trial
            amounts["loan"] = trial.principal
    return amounts, loan


# -- final claims of an instrument line ----------------------------------------------------------

@dataclass(frozen=True)
class AmountInvoice:
    date: date
    amount: Decimal

    @classmethod
    def parse(cls, raw, field: str) -> "AmountInvoice":
        d = invoice_date(raw, field, ("date", "amount"))
        return cls(d, parse_amount(raw["amount"], f"{field}.amount", allow_zero=False))

    def as_dict(self) -> dict:
        return {"date": self.date.isoformat(), "amount": str(self.amount)}


def parse_invoice_line(raw, field: str, *, consulting: bool):
    from rules.money import InvoiceLine

    if consulting:
        return InvoiceLine.parse(raw, field)
    return AmountInvoice.parse(raw, field)


@dataclass(frozen=True)
class ExpenseWindow:
    """The days an expense counts (Europe/Paris, inclusive): a fixed cut-off (Occitanie) or a
    window relative to the dossier (from its submission to N months after its vote)."""

    starts_on: date | None
    ends_on: date | None

    def excludes(self, day: date) -> str | None:
        if self.starts_on is not None and day < self.starts_on:
            return f"dépense antérieure au {fr_day(self.starts_on)} (dépôt du dossier)"
        if self.ends_on is not None and day > self.ends_on:
            return f"dépense postérieure à la date limite du {fr_day(self.ends_on)}"
        return None


def assess_line_claim(programme: Programme, *, size_class: str, voted_line: dict, invoices: list,
                      window: ExpenseWindow):
    """A final claim of an instrument line: the justified expense (lines outside the expense
    window cut, never refused), the subsidy recomputed on it with every cap of the line — the
    combined cap counting the voted loan — and never more than voted (SPEC §11.2)."""
    from rules.money import ClaimAssessment

    phase = programme.phase(voted_line["phase"])
    consulting = voted_line.get("expense_kind") == "days"
    adjustments: list[Adjustment] = []
    excluded: list[dict] = []
    claimed = eligible = out_of_window = rate_cut = ZERO
    days = 0
    cap = day_rate_cap(programme, phase) if consulting else None
    for line in invoices:
        if consulting:
            gross = cents(line.days * line.day_rate)
            counted = cents(line.days * min(line.day_rate, cap))
        else:
            gross = counted = line.amount
        claimed += gross
        reason = window.excludes(line.date)
        if reason:
            out_of_window += counted
            excluded.append({"date": line.date.isoformat(), "amount": str(counted), "reason": reason})
            continue
        rate_cut += gross - counted
        eligible += counted
        if consulting:
            days += line.days
    if rate_cut > 0:
        adjustments.append(Adjustment("day_rate_cap", phase.number, "expense", rate_cut, f"taux journalier plafonné à {cap} € HT"))
    if out_of_window > 0:
        adjustments.append(Adjustment("expense_cutoff", phase.number, "expense", out_of_window,
                                      "dépenses hors de la période d'éligibilité"))
    if consulting:
        performed = sum(line.days for line in invoices)
        min_days = programme.require(phase.min_days, f"phases[{phase.number}].min_days")
        if performed < min_days:
            raise RuleViolation("day_minimum", f"Ligne {phase.number} : {performed} jour(s) facturé(s) pour un minimum "
                                f"de {min_days} jours.", field="invoices")
    justified_expense = min(eligible, Decimal(voted_line["eligible_expense"]))
    voted_subsidy = Decimal(voted_line["aid"])
    subsidy_instrument = phase.instrument_of("subsidy")
    justified = ZERO
    if subsidy_instrument is not None and voted_subsidy > 0:
        rate = instrument_rate(subsidy_instrument, size_class=size_class, consulting=consulting, programme=programme,
                               phase=phase)
        justified = min(instrument_ceiling(subsidy_instrument, justified_expense, rate), voted_subsidy)
        if phase.combined_cap_rate is not None:
            # The loan and the subsidy together stay within the cap of the *justified* expense: a
            # claim justifying less than voted may cut the subsidy further — a cut listed as such
            # (what the vote already cut is not listed twice: the subsidy is compared to the voted one).
            loan = Decimal((voted_line.get("loan") or {}).get("principal", "0"))
            limit = cents(justified_expense * phase.combined_cap_rate)
            capped = min(justified, max(limit - loan, ZERO))
            if capped < justified:
                adjustments.append(Adjustment("subsidy_cap", phase.number, "aid", justified - capped,
                                              f"prêt et subvention ensemble plafonnés à {limit} € "
                                              f"({percent(phase.combined_cap_rate)} de la dépense justifiée)"))
            justified = capped
    return ClaimAssessment(phase.number, claimed, days, eligible, justified, tuple(adjustments), tuple(excluded))


def validate_invoice_kinds(invoices_raw, *, consulting: bool, field: str = "invoices") -> list:
    if not isinstance(invoices_raw, list) or not invoices_raw:
        shape = "{date, days, day_rate}" if consulting else "{date, amount}"
        raise InvalidInput(field, f"{field} : au moins une ligne de facture {shape}.")
    if len(invoices_raw) > 500:
        raise InvalidInput(field, f"{field} : 500 lignes au plus par demande.")
    return [parse_invoice_line(raw, f"{field}[{i}]", consulting=consulting) for i, raw in enumerate(invoices_raw)]


__all__ = ["AmountInvoice", "ExpenseItem", "ExpenseWindow", "LineRequest", "LoanTerms", "assess_line_claim",
           "compute_line_aid", "key_of", "parse_days", "parse_request", "validate_invoice_kinds"]
