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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator, model_validator

from rules.errors import UnknownFigure

FILES = Path(__file__).parent / "files"
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
    opens_on: date
    closes_on: date
    label: str = ""


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
    pathway_cap_cut_from: Literal["latest"]
    equity_cap: bool
    aid_cap_cut_from: Literal["latest"]
    expense_cutoff: OptDate
    payment_deadline_months: OptInt
    convention_threshold: Decimal


class LegalBasis(Frozen):
    sme: OptStr
    eti: OptStr


class Phase(Frozen):
    number: int
    name: str
    instrument: Literal["subsidy", "zero_rate_loan", "subsidised_loan"]
    rate: OptDecimal
    min_days: OptInt
    max_days: OptInt
    advance_max_rate: OptDecimal
    legal_basis: LegalBasis
    loan_deferral_months: int | None = None
    loan_interest_rate: OptDecimal = None
    loan_max_amount: OptDecimal = None

    @field_validator("rate", "advance_max_rate")
    @classmethod
    def _a_share(cls, v):
        if v is not None and not (Decimal(0) <= v <= Decimal(1)):
            raise ValueError("un taux est compris entre 0 et 1")
        return v


class Documents(Frozen):
    candidacy: tuple[str, ...]
    diagnostic: tuple[str, ...]
    vote: tuple[str, ...]
    payment_claim: tuple[str, ...]


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
    status: Literal["complete", "incomplete"]
    target_companies: OptInt
    attributing_siret: OptStr
    calls_per_year: int | None = None
    windows: tuple[Window, ...]
    eligibility: Eligibility
    size: SizeRules
    money: MoneyRules
    phases: tuple[Phase, ...]
    documents: Documents
    reminders: Reminders
    council: Council
    notices: Notices
    reported: Reported | None = None
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

    def require(self, value, field: str):
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
