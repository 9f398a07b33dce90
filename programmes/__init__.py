"""Programmes are data: one TOML file per programme and version under `programmes/files/`,
loaded into frozen, validated models. Code reads the numbers; it never hard-codes them.

A figure the programme text does not give is written `"unknown"` in the file and loads as
`None`; `Programme.require(...)` refuses (rule `programme_figure_unknown`) when a computation
needs it."""
from __future__ import annotations

import hashlib
import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator, model_validator

from rules.errors import UnknownFigure

_T = TypeVar("_T")

FILES = Path(__file__).parent / "files"
# What every page, letter, export and CLI output of a dossier under an example programme says.
EXAMPLE_NOTICE = "Programme d'exemple — chiffres non officiels"
REGULATIONS = Path(__file__).parent / "regulations.toml"


def _unknown_to_none(value: Any) -> Any:
    return None if value == "unknown" else value


def _strict_money(value: Any) -> Any:
    # Money in programme files is written as strings ("1200.00") so TOML never makes it a float.
    if isinstance(value, float):
        raise ValueError("les montants s'écrivent entre guillemets (\"1200.00\"), jamais en flottant")
    return value


Maybe = BeforeValidator(_unknown_to_none)
MoneyIn = BeforeValidator(_strict_money)
OptDecimal = Annotated[Decimal | None, MoneyIn, Maybe]
OptInt = Annotated[int | None, Maybe]
OptDate = Annotated[date | None, Maybe]
OptStr = Annotated[str | None, Maybe]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(Frozen):
    """An AMI window; with a `code`, a named call (SPEC §11.1): open from 00:00 on its opening
    day to the end of its closing day, Europe/Paris; published dates, never moved."""

    opens_on: date
    closes_on: date
    label: str = ""
    code: str | None = None
    committee_on: date | None = None


class Eligibility(Frozen):
    activities: tuple[str, ...]
    regions: tuple[str, ...]
    min_first_fy_months: OptInt
    in_difficulty_allowed: bool
    tax_social_required: bool


class SizeRules(Frozen):
    sme_max_employees: int
    eti_max_employees: int
    sme_max_turnover: OptDecimal
    sme_max_balance_sheet: OptDecimal
    eti_max_turnover: OptDecimal
    eti_max_balance_sheet: OptDecimal
    eligible_classes: tuple[Literal["sme", "eti"], ...]


class MoneyRules(Frozen):
    day_rate_cap: OptDecimal
    pathway_cap: OptDecimal
    # False where the programme sets no cap on the sum of a dossier's phases (not "unknown").
    has_pathway_cap: bool = True
    pathway_cap_cut_from: Literal["latest"]
    equity_cap: bool
    aid_cap_cut_from: Literal["latest"]
    expense_cutoff: OptDate
    # A cut-off relative to each dossier: its expenses count from its submission (or an aid
    # dossier's opening) until this many months after its vote (SPEC §11.2, §11.4).
    expense_window_months_after_vote: int | None = None
    payment_deadline_months: OptInt
    convention_threshold: Decimal
    # EU base rate + this margin = the reference and discount rates of a loan's GGE (2008/C 14/02).
    gge_margin: Annotated[Decimal, MoneyIn] = Decimal("0.0100")


class LegalBasis(Frozen):
    sme: OptStr
    eti: OptStr


def _share(v):
    if v is not None and not (Decimal(0) <= v <= Decimal(1)):
        raise ValueError("un taux est compris entre 0 et 1")
    return v


class Instrument(Frozen):
    """One instrument of an aid line (SPEC §11.2) with its own caps: `rate` of the eligible
    expense (`rate_eti` for a mid-cap, `consulting_rate` when the expense is days of consulting)
    and `max_amount`. A loan also has its annual rate, deferral and number of instalments."""

    kind: Literal["subsidy", "zero_rate_loan", "subsidised_loan"]
    rate: OptDecimal
    rate_eti: OptDecimal = None
    consulting_rate: OptDecimal = None
    max_amount: OptDecimal = None
    annual_rate: Annotated[Decimal, MoneyIn] = Decimal("0")
    deferral_months: int = 0
    instalments: OptInt = None
    legal_basis: LegalBasis

    @property
    def is_loan(self) -> bool:
        return self.kind != "subsidy"

    @field_validator("rate", "rate_eti", "consulting_rate", "annual_rate")
    @classmethod
    def _a_share(cls, v):
        return _share(v)

    @field_validator("deferral_months")
    @classmethod
    def _whole_quarters(cls, v):
        if v < 0 or v % 3:
            raise ValueError("un différé se compte en trimestres entiers (0, 3, 6, 12… mois)")
        return v


class Phase(Frozen):
    number: int
    name: str
    instrument: Literal["subsidy", "zero_rate_loan", "subsidised_loan"]
    # A line with `instruments` reads its rates, caps and legal bases there: these stay empty.
    rate: OptDecimal = None
    min_days: OptInt = None
    max_days: OptInt = None
    advance_max_rate: OptDecimal = None
    legal_basis: LegalBasis | None = None
    loan_deferral_months: int | None = None
    loan_interest_rate: OptDecimal = None
    loan_max_amount: OptDecimal = None
    # A line's own day-rate cap (else the programme's `money.day_rate_cap`).
    day_rate_cap: OptDecimal = None
    # What its eligible expense is: days of consulting, amounts of investment, or either.
    expense: Literal["days", "investment", "days_or_investment"] = "days"
    instruments: tuple[Instrument, ...] = ()
    # Loan + subsidy together at most this share of the eligible expense (the excess cut from the subsidy).
    combined_cap_rate: OptDecimal = None

    @field_validator("rate", "advance_max_rate", "combined_cap_rate")
    @classmethod
    def _a_share(cls, v):
        return _share(v)

    def instrument_of(self, kind: str) -> "Instrument | None":
        for i in self.instruments:
            if (i.kind == "subsidy") == (kind == "subsidy"):
                return i
        return None

    @property
    def loan(self) -> "Instrument | None":
        return next((i for i in self.instruments if i.is_loan), None)


class Line(Frozen):
    """What one dossier of the programme is (SPEC §11): its phases and the shape of its
    lifecycle — `diagnostic` (eligibility → diagnostic → action plan → vote, as Occitanie),
    `instruction` (eligibility → instruction → vote, every Pays de la Loire line) or `aid` (an aid
    dossier opened from the approved plan of a `diagnostic` line, in instruction at once)."""

    number: int
    name: str
    shape: Literal["diagnostic", "instruction", "aid"]
    phases: tuple[int, ...]
    # A diagnostic line's plan: phase-2 days and rate (Occitanie) or numbered actions (Nouvelle-Aquitaine).
    plan: Literal["phase2", "actions"] | None = None
    opened_from: int | None = None
    may_cite: tuple[int, ...] = ()
    # The pieces this line's vote needs, where they differ from the programme's `documents.vote`;
    # and whether its dossier is created with the candidacy pieces (an aid dossier is not).
    vote_documents: tuple[str, ...] | None = None


class Documents(Frozen):
    candidacy: tuple[str, ...]
    diagnostic: tuple[str, ...]
    vote: tuple[str, ...]
    payment_claim: tuple[str, ...]
    # The candidacy pieces are examined and accepted before a dossier is declared eligible
    # (`pieces_unreviewed`). Off unless the file says so: the programme files of version 1 and
    # the golden scenarios played on them declare eligible with pieces still to examine.
    reviewed_before_eligibility: bool = False


class ReminderStep(Frozen):
    after_days: int
    kind: Literal["documents_reminder", "documents_final_notice"]


class Reminders(Frozen):
    steps: tuple[ReminderStep, ...]
    lapse_after_days: int
    shift_to_working_day: bool


class Council(Frozen):
    session_after_days: int
    agenda_closes_days_before: int


class Notices(Frozen):
    """Lead times of the sweeps' notices (choice, per programme)."""

    window_opening_days: int   # an opening notice still goes out up to N days after the opening day
    window_closing_days: int   # the closing notice goes out from N days before the closing day
    agenda_reminder_days: int  # officers are reminded from N days before a session's agenda closes


class Retention(Frozen):
    """How long a closed dossier's personal data are kept (RGPD art. 5.1.e, storage limitation):
    the programme's "durée d'utilité administrative", in whole years counted from the event that
    closed the dossier; past it, `services.retention` anonymises the dossier and deletes its pieces."""

    years_after_closure: int = 10

    @field_validator("years_after_closure", mode="before")
    @classmethod
    def _whole_years(cls, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("la durée de conservation est un nombre entier d'années (par exemple 10)")
        if not 1 <= v <= 100:
            raise ValueError("la durée de conservation est comprise entre 1 et 100 ans après la clôture")
        return v


class Reported(Frozen):
    sites_diagnosed: int | None = None
    aid_dossiers_voted: int | None = None
    companies_engaged: int | None = None
    share_with_progress_plan: OptDecimal = None


class Programme(Frozen):
    id: str
    version: int
    name: str
    region: str
    # "example": illustrative figures (SPEC §11), labelled as such on every page, letter and export.
    status: Literal["complete", "incomplete", "example"]
    target_companies: OptInt
    attributing_siret: OptStr
    calls_per_year: int | None = None
    windows: tuple[Window, ...]
    eligibility: Eligibility
    size: SizeRules
    money: MoneyRules
    phases: tuple[Phase, ...]
    # Without `lines`, one line holds every phase with a diagnostic stage (Occitanie's shape).
    lines: tuple[Line, ...] = ()
    documents: Documents
    reminders: Reminders
    council: Council
    notices: Notices
    reported: Reported | None = None
    # Absent from a file: the default (10 years after closure).
    retention: Retention = Retention()
    # Filled by the loader, not by the file.
    content_hash: str = ""

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"

    def phase(self, number: int) -> Phase:
        for p in self.phases:
            if p.number == number:
                return p
        raise KeyError(number)

    @property
    def is_example(self) -> bool:
        return self.status == "example"

    @property
    def dossier_lines(self) -> tuple[Line, ...]:
        if self.lines:
            return self.lines
        return (Line(number=1, name=self.name, shape="diagnostic", phases=tuple(p.number for p in self.phases),
                     plan="phase2"),)

    def line(self, number: int) -> Line:
        for line in self.dossier_lines:
            if line.number == number:
                return line
        from rules.errors import InvalidInput

        known = ", ".join(str(line.number) for line in self.dossier_lines)
        raise InvalidInput("line", f"line : ligne d'aide inconnue « {number} » pour {self.name} (lignes : {known}).",
                           rule="unknown_line")

    def call_on(self, day: date) -> Window | None:
        """The window (call) open on a Europe/Paris day, or None."""
        return next((w for w in self.windows if w.opens_on <= day <= w.closes_on), None)

    def require(self, value: _T | None, field: str) -> _T:
        """The value of a figure a computation needs, or a refusal naming it."""
        if value is None:
            raise UnknownFigure(self.id, field)
        return value


class DeMinimisRegime(Frozen):
    regulation: str
    granted_from: date
    granted_until: date | None = None
    ceiling: Annotated[Decimal, MoneyIn]
    period: Literal["fiscal_years", "rolling_years"]
    years: int


class BaseRatePeriod(Frozen):
    """One period of the EU base rate of a Member State (Commission communication 2008/C 14/02),
    as the Commission's notice in the Official Journal (C series) publishes it: in percent."""

    valid_from: date
    valid_until: date | None = None  # inclusive; None: still in force
    percent: Annotated[Decimal, MoneyIn]
    oj_reference: str

    @property
    def rate(self) -> Decimal:
        """The rate as a fraction (-0.22 % → -0.0022), as loan rates are written."""
        return self.percent / 100

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


class BaseRates(Frozen):
    """EU base rates by Member State; the margins of the Communication (in fraction of one)."""

    reference_margin: Annotated[Decimal, MoneyIn] = Decimal("0.0100")
    discount_margin: Annotated[Decimal, MoneyIn] = Decimal("0.0100")
    FR: tuple[BaseRatePeriod, ...] = ()

    @model_validator(mode="after")
    def _periods_in_order(self):
        periods = self.FR
        for i, period in enumerate(periods):
            if period.valid_until is not None and period.valid_until < period.valid_from:
                raise ValueError(f"base_rates.FR[{i}] : la période finit avant de commencer")
            if i + 1 < len(periods):
                nxt = periods[i + 1]
                if period.valid_until is None or period.valid_until >= nxt.valid_from:
                    raise ValueError(f"base_rates.FR[{i}] : les périodes se chevauchent ou ne sont pas dans l'ordre")
        return self


class Regulations(Frozen):
    de_minimis: tuple[DeMinimisRegime, ...]
    base_rates: BaseRates = BaseRates()


class ProgrammeFileError(Exception):
    """A programme file that does not load: names the file, the field and the reason."""

    def __init__(self, path: Path, field: str, reason: str):
        super().__init__(f"{path.name}: champ « {field} » : {reason}")
        self.path = path
        self.field = field
        self.reason = reason


def load_programme_file(path: Path) -> Programme:
    raw_bytes = path.read_bytes()
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeFileError(path, "(syntaxe)", str(exc)) from None
    try:
        programme = Programme.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(racine)"
        raise ProgrammeFileError(path, field, first["msg"]) from None
    expected_name = f"{programme.id}.v{programme.version}.toml"
    if path.name != expected_name:
        raise ProgrammeFileError(path, "id", f"le fichier devrait s'appeler {expected_name}")
    numbers = [p.number for p in programme.phases]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ProgrammeFileError(path, "phases", "les phases sont numérotées 1, 2, … dans l'ordre")
    for w in programme.windows:
        if w.closes_on < w.opens_on:
            raise ProgrammeFileError(path, "windows", "une fenêtre se ferme avant de s'ouvrir")
    ordered = sorted(programme.windows, key=lambda w: w.opens_on)
    for before, after in zip(ordered, ordered[1:]):
        if after.opens_on <= before.closes_on:
            raise ProgrammeFileError(path, "windows", f"les appels {before.code or before.label} et "
                                     f"{after.code or after.label} se chevauchent")
    phase_numbers = set(numbers)
    for line in programme.lines:
        unknown = [n for n in line.phases if n not in phase_numbers]
        if unknown or not line.phases:
            raise ProgrammeFileError(path, f"lines[{line.number}].phases", "une ligne nomme des phases du programme")
        if line.shape == "aid" and (line.opened_from is None
                                    or programme.line(line.opened_from).shape != "diagnostic"):
            raise ProgrammeFileError(path, f"lines[{line.number}].opened_from",
                                     "un dossier d'aide s'ouvre depuis une ligne de diagnostic")
    for phase in programme.phases:
        loans = [i for i in phase.instruments if i.is_loan]
        if len(loans) > 1 or len(phase.instruments) - len(loans) > 1:
            raise ProgrammeFileError(path, f"phases[{phase.number}].instruments",
                                     "une ligne a au plus une subvention et un prêt")
        for loan in loans:
            if loan.instalments is None or loan.instalments < 1:
                raise ProgrammeFileError(path, f"phases[{phase.number}].instruments.instalments",
                                         "un prêt a un nombre d'échéances d'amortissement ≥ 1")
    return programme.model_copy(update={"content_hash": hashlib.sha256(raw_bytes).hexdigest()})


class Catalogue:
    """Every programme version found in a folder."""

    def __init__(self, folder: Path = FILES):
        self.folder = folder
        self._by_key: dict[tuple[str, int], Programme] = {}
        for path in sorted(folder.glob("*.toml")):
            p = load_programme_file(path)
            self._by_key[(p.id, p.version)] = p

    def ids(self) -> list[str]:
        return sorted({pid for pid, _ in self._by_key})

    def all(self) -> list[Programme]:
        return [self._by_key[k] for k in sorted(self._by_key)]

    def latest(self, programme_id: str) -> Programme:
        versions = [v for pid, v in self._by_key if pid == programme_id]
        if not versions:
            from rules.errors import InvalidInput

            raise InvalidInput("programme", f"Programme inconnu : « {programme_id} » (connus : {', '.join(self.ids())}).",
                               rule="unknown_programme")
        return self._by_key[(programme_id, max(versions))]

    def get(self, programme_id: str, version: int) -> Programme:
        try:
            return self._by_key[(programme_id, version)]
        except KeyError:
            from rules.errors import InvalidInput

            raise InvalidInput("programme", f"Programme inconnu : {programme_id} v{version}",
                               rule="unknown_programme") from None


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    return Catalogue()


@lru_cache(maxsize=1)
def regulations() -> Regulations:
    return Regulations.model_validate(tomllib.loads(REGULATIONS.read_text("utf-8")))
