"""Request and response bodies of the API, each with an example (the OpenAPI document shows them).

Request bodies check the shape (types, bounds, lengths, enumerations); the services check the
domain rules and answer with their rule ids. Amounts are strings of euros with at most two
decimals ("1100.00"): JSON numbers are refused, so no amount ever passes through a float.

Every request body is validated in pydantic's strict mode: a boolean is `true` or `false` (not
"yes", 1 or "true"), an integer a JSON integer (not "45", 45.0 or `true`), a text a JSON string;
dates are the one text form "AAAA-MM-JJ" (`IsoDate`). A refusal is 422 `invalid_input` naming the
field (`api.problems.validation_problem`)."""
from __future__ import annotations

import datetime as dt
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from rules.text import LINE_PATTERN, TEXT_PATTERN
from services.commands import DOCUMENT_KINDS

AMOUNT = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
# Text fields: no control characters (a NUL byte is refused by PostgreSQL, the others are noise)
# and no bidirectional format characters; free-text reasons may span lines. The one definition is
# `rules.text`; a mismatch is answered with its rule `text_forbidden_character` (api/problems.py).
LINE = LINE_PATTERN
TEXT = TEXT_PATTERN
EARLIEST, LATEST = date(1990, 1, 1), date(2100, 12, 31)
Amount = Field(pattern=AMOUNT, max_length=13, description="Montant en euros HT, en texte, deux décimales au plus")
DocumentKind = Literal[DOCUMENT_KINDS]  # type: ignore[valid-type]
Activity = Literal["industrial", "ess_ei_ea", "ess_production_50", "other"]


def _iso_date(value: Any) -> Any:
    """A JSON date is the text "AAAA-MM-JJ", read here: strict mode takes only `date` objects,
    and lax mode would also take a number of seconds or a date-time at midnight."""
    if isinstance(value, date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date_type", "date AAAA-MM-JJ attendue")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _example(example: dict, **extra) -> ConfigDict:
    return ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [example]}, **extra)


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- requests ---------------------------------------------------------------------------------

COMPANY_EXAMPLE = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
                   "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False,
                   "tax_social_up_to_date": True, "activity": "industrial",
                   "email": "direction@atelier-garonne.example"}


class CompanyIn(BaseModel):
    model_config = _example(COMPANY_EXAMPLE)
    siren: str = Field(min_length=9, max_length=11, pattern=r"^[0-9 ]+$", description="SIREN (9 chiffres, clé de Luhn)")
    name: str = Field(min_length=1, max_length=200, pattern=LINE)
    employees: int = Field(ge=0, le=10_000_000)
    equity: str = Amount
    region: str = Field(min_length=1, max_length=100, pattern=LINE)
    first_fy_months: int = Field(ge=0, le=600)
    in_difficulty: bool
    tax_social_up_to_date: bool
    activity: Activity
    turnover: str | None = Field(None, pattern=AMOUNT, max_length=13)
    balance_sheet: str | None = Field(None, pattern=AMOUNT, max_length=13)
    email: str | None = Field(None, max_length=254, pattern=LINE)
    linked_sirens: list[Annotated[str, Field(max_length=11, pattern=r"^[0-9 ]+$")]] = Field(default_factory=list, max_length=50)


class PriorAidIn(BaseModel):
    model_config = _example({"granted_on": "2020-06-15", "amount": "190000.00"})
    granted_on: IsoDate = Field(ge=EARLIEST, le=LATEST)
    amount: str = Amount


class CandidacyIn(BaseModel):
    model_config = _example({"programme": "occitanie-prif", "company": COMPANY_EXAMPLE, "de_minimis_prior": [],
                             "submit": True})
    programme: str = Field(min_length=1, max_length=64, pattern=LINE, description="Identifiant du programme (ex. occitanie-prif)")
    company: CompanyIn
    de_minimis_prior: list[PriorAidIn] = Field(default_factory=list, max_length=100)
    documents: list[DocumentKind] | None = Field(
        None, max_length=len(DOCUMENT_KINDS),
        description="Pièces remises avec la candidature (défaut : toutes celles qu'exige le programme)")
    submit: bool = Field(True, description="false : enregistrer un brouillon, déposé plus tard par la commande submit_candidacy")


class QuoteIn(BaseModel):
    model_config = _example({"days": 5, "day_rate": "1100.00"})
    days: int = Field(ge=0, le=1000)
    day_rate: str = Amount


class InvoiceLineIn(BaseModel):
    model_config = _example({"date": "2021-03-10", "days": 5, "day_rate": "1100.00"})
    date: IsoDate = Field(ge=EARLIEST, le=LATEST)
    days: int = Field(ge=0, le=1000)
    day_rate: str = Amount


class KindsIn(BaseModel):
    model_config = _example({"kinds": ["kbis", "rib"]})
    kinds: list[DocumentKind] = Field(min_length=1, max_length=len(DOCUMENT_KINDS))


class ReviewDocumentIn(BaseModel):
    model_config = _example({"document_id": 3, "decision": "refused", "reason": "Extrait Kbis de plus de trois mois."})
    document_id: int = Field(ge=1, le=2**31 - 1)
    decision: Literal["accepted", "refused"]
    reason: str | None = Field(None, max_length=2000, pattern=TEXT)


class DeclareEligibleIn(BaseModel):
    model_config = _example({"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": "1100.00"}})
    consultant: str = Field(min_length=1, max_length=200, pattern=LINE)
    phase1: QuoteIn


class ReasonIn(BaseModel):
    model_config = _example({"reason": "Entreprise hors du champ du programme."})
    reason: str = Field(min_length=1, max_length=2000, pattern=TEXT)


class WithdrawIn(ReasonIn):
    model_config = _example({"reason": "Projet d'investissement reporté à l'an prochain."})


class ActionPlanIn(BaseModel):
    model_config = _example({"phase2": {"days": 20, "day_rate": "1300.00"}})
    phase2: QuoteIn


class ProposeIn(BaseModel):
    model_config = _example({"session": "CP-2021-04"})
    session: str = Field(min_length=1, max_length=64, pattern=LINE)


class VoteIn(BaseModel):
    model_config = _example({"session": "CP-2021-04", "outcome": "approved", "deliberation": "CP/2021-04/17"})
    session: str = Field(min_length=1, max_length=64, pattern=LINE)
    outcome: Literal["approved", "rejected", "adjourned"]
    deliberation: str | None = Field(None, max_length=64, pattern=LINE)


class ClaimIn(BaseModel):
    model_config = _example({"phase": 1, "kind": "final",
                             "invoices": [{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}]})
    phase: int = Field(ge=1, le=9)
    kind: Literal["advance", "final"]
    amount: str | None = Field(None, pattern=AMOUNT, max_length=13, description="Montant d'une avance")
    invoices: list[InvoiceLineIn] | None = Field(None, max_length=500, description="Lignes de facture d'une demande de solde")


class PayIn(BaseModel):
    model_config = _example({"claim_id": 1})
    claim_id: int | None = Field(None, ge=1, le=2**31 - 1, description="Demande à payer (défaut : la plus ancienne en attente)")


class BulkVoteItem(BaseModel):
    model_config = _example({"dossier_id": 12, "outcome": "approved", "deliberation": "CP/2021-04/17"})
    dossier_id: int = Field(ge=1, le=2**31 - 1)
    outcome: Literal["approved", "rejected", "adjourned"]
    deliberation: str | None = Field(None, max_length=64, pattern=LINE)
    expected_version: int | None = Field(None, ge=0, le=2**31 - 1, description="Version lue (sinon pas de contrôle)")


class BulkVoteIn(BaseModel):
    model_config = _example({"votes": [
        {"dossier_id": 12, "outcome": "approved", "deliberation": "CP/2021-04/17"},
        {"dossier_id": 15, "outcome": "adjourned"}]})
    votes: list[BulkVoteItem] = Field(min_length=1, max_length=500)


class UserIn(BaseModel):
    model_config = _example({"username": "agent.occitanie2", "password": "un mot de passe long",
                             "role": "officer", "display_name": "Léa Dubois, chargée de mission",
                             "regions": ["Occitanie"]})
    username: str = Field(min_length=2, max_length=80, pattern=LINE)
    password: str = Field(min_length=1, max_length=256)
    role: Literal["applicant", "consultant", "officer", "head", "finance", "auditor", "admin"]
    display_name: str | None = Field(None, max_length=200, pattern=LINE)
    regions: list[Annotated[str, Field(max_length=100, pattern=LINE)]] = Field(default_factory=list, max_length=20)
    siren: str | None = Field(None, max_length=11, pattern=LINE)
    consultant: str | None = Field(None, max_length=200, pattern=LINE)


# -- responses --------------------------------------------------------------------------------

class TokenOut(Out):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class UserOut(Out):
    username: str
    display_name: str
    role: str
    regions: list[str]
    siren: str | None
    consultant: str | None
    active: bool
    created_at: str
    disabled_at: str | None


class Adjustment(Out):
    rule: str
    phase: int
    base: str
    amount: str


class CommandOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "dossier_id": 12, "reference": "OCC-2021-000012", "state": "ready_for_vote",
        "state_label": "proposé au vote", "version": 9,
        "adjustments": [{"rule": "day_rate_cap", "phase": 2, "base": "expense", "amount": "2000.00"}],
        "details": {"aid": {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"}}}]})
    dossier_id: int
    reference: str
    state: str
    state_label: str
    version: int
    adjustments: list[Adjustment]
    details: dict[str, Any]


class DossierRow(Out):
    id: int
    reference: str
    programme: str
    programme_version: int
    region: str | None
    company: str
    siren: str
    state: str
    state_label: str
    version: int
    officer: str | None
    consultant: str | None
    aid_total: str | None
    paid: str
    next_deadline: str | None
    submitted_at: str
    updated_at: str


class DossierPage(Out):
    items: list[DossierRow]
    total: int
    limit: int
    offset: int


class DocumentRequestOut(Out):
    id: int
    kinds: list[str]
    requested_by: str
    requested_on: str
    lapse_on: str
    status: str


class DossierOut(Out):
    id: int
    reference: str
    programme: str
    programme_version: int
    region: str | None
    company: str
    siren: str
    state: str
    state_label: str
    version: int
    officer: str | None
    consultant: str | None
    size_class: str | None
    aid: dict[str, str] | None
    paid: str
    cancelled_remainder: str | None
    deliberation: str | None
    payment_deadline_on: str | None
    adjustments: list[Adjustment]
    notifications: dict[str, int]
    events: int
    submitted_at: str
    updated_at: str
    quotes: dict[str, Any]
    document_requests: list[DocumentRequestOut]
    allowed_commands: list[str]


class DocumentOut(Out):
    id: int
    kind: str
    version: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_role: str
    uploaded_at: str
    review_status: str
    review_reason: str | None


class UploadOut(Out):
    document: DocumentOut
    dossier_id: int
    state: str
    version: int


class PaymentOut(Out):
    id: int
    kind: str
    amount: str
    paid_at: str


class RecoveryOut(Out):
    id: int
    amount: str
    issued_at: str


class ClaimOut(Out):
    id: int
    dossier_id: int
    dossier_reference: str
    phase: int
    kind: str
    status: str
    amount_claimed: str
    invoices: list[dict[str, Any]]
    assessment: dict[str, Any] | None
    claimed_at: str
    paid_at: str | None
    payments: list[PaymentOut]
    recovery_orders: list[RecoveryOut]


class ClaimPage(Out):
    items: list[ClaimOut]
    total: int
    limit: int
    offset: int


class CouncilSessionOut(Out):
    code: str
    programme: str
    session_date: str
    agenda_closes_on: str
    dossiers: int


class AgendaOut(Out):
    session: CouncilSessionOut
    items: list[DossierRow]


class BulkVoteResult(Out):
    dossier_id: int
    ok: bool
    status: int
    state: str | None = None
    version: int | None = None
    adjustments: list[Adjustment] = []
    refused: dict[str, Any] | None = None


class BulkVoteOut(Out):
    session: str
    applied: int
    refused: int
    results: list[BulkVoteResult]


class EventOut(Out):
    seq: int
    at: str
    actor: str
    role: str
    command: str
    state_before: str
    state_after: str
    data: dict[str, Any]
    reason: str | None
    hash: str
    prev_hash: str
    description: str


class CompanyRow(Out):
    siren: str
    name: str


class CompanyPage(Out):
    items: list[CompanyRow]
    total: int
    limit: int
    offset: int


class CompanyOut(Out):
    siren: str
    name: str
    email: str | None
    dossiers: list[DossierRow]


class ProgrammeRow(Out):
    id: str
    version: int
    name: str
    region: str
    status: str
    windows: list[dict[str, Any]]
    open_on: str = Field(description="Jour (Europe/Paris) où l'ouverture est évaluée")
    open: bool


class HealthOut(Out):
    status: str
    database: str
    version: str
