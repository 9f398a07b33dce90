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
Activity = Literal["industrial", "ess_ei_ea", "ess_production_50", "craft_production", "other"]


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


DossierRef = Annotated[int, Field(ge=1, le=2**31 - 1)]


class CandidacyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"programme": "occitanie-prif", "company": COMPANY_EXAMPLE, "de_minimis_prior": [], "submit": True},
        {"programme": "pdl-ami-idf-exemple", "line": 3, "cites": 12, "de_minimis_prior": [], "submit": True,
         "company": {**COMPANY_EXAMPLE, "siren": "441830007", "name": "Usinage Loire SAS",
                     "region": "Pays de la Loire"}}]})
    programme: str = Field(min_length=1, max_length=64, pattern=LINE, description="Identifiant du programme (ex. occitanie-prif)")
    company: CompanyIn
    de_minimis_prior: list[PriorAidIn] = Field(default_factory=list, max_length=100)
    documents: list[DocumentKind] | None = Field(
        None, max_length=len(DOCUMENT_KINDS),
        description="Pièces remises avec la candidature (défaut : toutes celles qu'exige le programme)")
    submit: bool = Field(True, description="false : enregistrer un brouillon, déposé plus tard par la commande submit_candidacy")
    line: int | None = Field(None, ge=1, le=9, description="Ligne d'aide du programme (défaut : la première) ; "
                             "Pays de la Loire : 1 diagnostic, 2 test et intégration, 3 déploiement")
    cites: DossierRef | None = Field(None, description="Dossier antérieur de l'entreprise dans ce programme, "
                                     "qu'une candidature de ligne 2 ou 3 cite")


class QuoteIn(BaseModel):
    model_config = _example({"days": 5, "day_rate": "1100.00"})
    days: int = Field(ge=0, le=1000)
    day_rate: str = Amount


class InvoiceLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}, {"date": "2020-09-30", "amount": "600000.00"}]})
    date: IsoDate = Field(ge=EARLIEST, le=LATEST)
    days: int | None = Field(None, ge=0, le=1000, description="Jours facturés (ligne de conseil)")
    day_rate: str | None = Field(None, pattern=AMOUNT, max_length=13, description="Taux journalier (ligne de conseil)")
    amount: str | None = Field(None, pattern=AMOUNT, max_length=13,
                               description="Montant HT de la facture (ligne d'investissement)")


class ExpenseIn(BaseModel):
    model_config = _example({"label": "Ligne d'usinage robotisée", "amount": "1050000.00"})
    label: str = Field(min_length=1, max_length=200, pattern=LINE)
    amount: str = Amount


class InstrumentsIn(BaseModel):
    model_config = _example({"subsidy": "150000.00", "loan": "500000.00"})
    subsidy: str | None = Field(None, pattern=AMOUNT, max_length=13, description="Subvention demandée (coupée à ses plafonds)")
    loan: str | None = Field(None, pattern=AMOUNT, max_length=13,
                             description="Prêt demandé, à taux zéro ou bonifié selon la ligne (coupé à ses plafonds : "
                                         "ajustement `loan_cap`)")


class ActionIn(BaseModel):
    model_config = _example({"number": 1, "theme": "economic", "budget": "240000.00"})
    number: int = Field(ge=1, le=100)
    theme: Literal["economic", "social", "environmental"]
    budget: str = Amount


class KindsIn(BaseModel):
    model_config = _example({"kinds": ["kbis", "rib"]})
    kinds: list[DocumentKind] = Field(min_length=1, max_length=len(DOCUMENT_KINDS))


class ReviewDocumentIn(BaseModel):
    model_config = _example({"document_id": 3, "decision": "refused", "reason": "Extrait Kbis de plus de trois mois."})
    document_id: int = Field(ge=1, le=2**31 - 1)
    decision: Literal["accepted", "refused"]
    reason: str | None = Field(None, max_length=2000, pattern=TEXT)


class DeclareEligibleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": "1100.00"}},
        {"expenses": [{"label": "Ligne d'usinage robotisée", "amount": "1050000.00"},
                      {"label": "Intégration et mise en service", "amount": "150000.00"}],
         "instruments": {"subsidy": "150000.00", "loan": "500000.00"}}]})
    consultant: str | None = Field(None, min_length=1, max_length=200, pattern=LINE,
                                   description="Prestataire référencé (obligatoire sur une ligne avec diagnostic)")
    phase1: QuoteIn | None = Field(None, description="Devis du prestataire : jours et taux (ligne de conseil)")
    expenses: list[ExpenseIn] | None = Field(None, min_length=1, max_length=100,
                                             description="Dépenses éligibles HT d'une ligne d'investissement")
    instruments: InstrumentsIn | None = Field(None, description="Répartition demandée entre subvention et prêt")


class ReasonIn(BaseModel):
    model_config = _example({"reason": "Entreprise hors du champ du programme."})
    reason: str = Field(min_length=1, max_length=2000, pattern=TEXT)


class WithdrawIn(ReasonIn):
    model_config = _example({"reason": "Projet d'investissement reporté à l'an prochain."})


class ActionPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"phase2": {"days": 20, "day_rate": "1300.00"}},
        {"actions": [{"number": 1, "theme": "economic", "budget": "240000.00"},
                     {"number": 2, "theme": "environmental", "budget": "90000.00"}]}]})
    phase2: QuoteIn | None = Field(None, description="Devis de phase 2 : jours et taux (Occitanie)")
    actions: list[ActionIn] | None = Field(None, min_length=1, max_length=100,
                                           description="Plan de progrès : actions numérotées (Nouvelle-Aquitaine)")


class RepaymentIn(BaseModel):
    model_config = _example({"amount": "2030.00", "received_on": "2020-10-15"})
    amount: str = Amount
    received_on: IsoDate = Field(ge=EARLIEST, le=LATEST, description="Jour de réception des fonds (AAAA-MM-JJ)")


class WriteOffIn(BaseModel):
    model_config = _example({"reason": "Liquidation judiciaire de l'entreprise : créance irrécouvrable."})
    reason: str = Field(min_length=1, max_length=2000, pattern=TEXT)


class InvestmentIn(BaseModel):
    model_config = _example({"expenses": [{"label": "Presse à injecter", "amount": "180000.00"}]})
    expenses: list[ExpenseIn] = Field(min_length=1, max_length=100)


class AidDossierIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"actions": [1], "investment": {"expenses": [{"label": "Presse à injecter", "amount": "180000.00"},
                                                     {"label": "Outillage", "amount": "60000.00"}]}},
        {"actions": [2], "consulting": {"days": 12, "day_rate": "1100.00"}}]})
    actions: list[Annotated[int, Field(ge=1, le=100)]] = Field(min_length=1, max_length=100,
                                                               description="Numéros des actions du plan mises en œuvre")
    consulting: QuoteIn | None = Field(None, description="Conseil : jours et taux journalier")
    investment: InvestmentIn | None = Field(None, description="Investissement : dépenses éligibles HT")


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


class PlanSessionIn(BaseModel):
    model_config = _example({"code": "CP-2021-05", "programme": "occitanie-prif", "session_date": "2021-05-20",
                             "agenda_closes_on": "2021-05-12"})
    code: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f/]*$", description="Code de la séance")
    programme: str = Field(min_length=1, max_length=64, pattern=LINE)
    session_date: IsoDate = Field(ge=EARLIEST, le=LATEST, description="Jour de la séance (un jour ouvré à venir)")
    agenda_closes_on: IsoDate = Field(ge=EARLIEST, le=LATEST, description="Clôture de l'ordre du jour (avant la séance)")


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


class PasswordChangeIn(BaseModel):
    model_config = _example({"current_password": "demo-usine-2022", "new_password": "un nouveau mot de passe"})
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class PasswordSetIn(BaseModel):
    model_config = _example({"password": "un nouveau mot de passe"})
    password: str = Field(min_length=1, max_length=256)


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
    password_changed_at: str | None = None


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


class NextDueOut(Out):
    date: str
    principal: str
    interest: str


class LoanOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "principal": "400000.00", "disbursed": "400000.00", "repaid": "20000.00", "interest_paid": "10150.00",
        "outstanding": "380000.00", "instalments": 24,
        "next_due": {"date": "2022-01-15", "principal": "20000.00", "interest": "1928.50"}}]})
    principal: str
    disbursed: str
    repaid: str
    interest_paid: str
    outstanding: str
    instalments: int
    next_due: NextDueOut | None


class _DossierIdentity(Out):
    """What a listing row and a dossier's detail both say of it, first and in this order."""

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


class DossierRow(_DossierIdentity):
    aid_total: str | None
    paid: str
    next_deadline: str | None
    submitted_at: str
    updated_at: str
    line: int = Field(description="Ligne d'aide du programme")
    call: str | None = Field(description="Appel (AMI) auquel la candidature a été déposée")
    example: bool = Field(description="Programme d'exemple : chiffres non officiels")
    loan_principal: str | None = Field(description="Prêt voté (principal), s'il y en a un")
    loan_outstanding: str | None = Field(description="Capital restant dû d'un prêt versé")
    loan_next_due_on: str | None = Field(description="Prochaine échéance impayée d'un prêt versé")


class DossierPage(Out):
    items: list[DossierRow]
    total: int = Field(description="Nombre de dossiers des filtres, exact jusqu'à 10 000 ; au-delà 10 000 et `total_capped`")
    total_capped: bool = Field(False, description="Vrai quand il y a plus de `total` dossiers (le compte s'arrête là)")
    limit: int
    offset: int
    next_cursor: str | None = Field(None, description="À passer en `cursor` pour la page suivante ; absent en fin de liste")
    prev_cursor: str | None = Field(None, description="À passer en `cursor` pour la page précédente")


class DocumentRequestOut(Out):
    id: int
    kinds: list[str]
    requested_by: str
    requested_on: str
    lapse_on: str
    status: str


class DossierOut(_DossierIdentity):
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
    line: int = Field(description="Ligne d'aide du programme")
    line_name: str = Field(description="Nom de la ligne d'aide")
    call: str | None = Field(description="Appel (AMI) auquel la candidature a été déposée")
    example: bool = Field(description="Programme d'exemple : chiffres non officiels")
    example_notice: str | None = Field(description="« Programme d'exemple — chiffres non officiels » le cas échéant")
    cites: str | None = Field(description="Référence du dossier antérieur cité (Pays de la Loire)")
    plan: str | None = Field(description="Référence du dossier de diagnostic dont le plan de progrès est mis en œuvre")
    actions: list[Any] | None = Field(description="Actions du plan de progrès (dossier de diagnostic), ou numéros "
                                      "mis en œuvre (dossier d'aide)")
    loan: LoanOut | None = Field(description="Prêt : principal, versé, remboursé, intérêts payés, restant dû, "
                                 "échéances, prochaine échéance")
    written_off: str | None = Field(description="Montant passé en perte")


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


class InstalmentOut(Out):
    number: int
    date: str
    principal: str
    interest: str
    amount: str
    outstanding_after: str


class PathwayDossierOut(Out):
    id: int
    reference: str
    programme: str
    programme_id: str
    example: bool
    line: str
    call: str | None
    state: str
    state_label: str
    aid: dict[str, str] | None
    paid: str
    loan: LoanOut | None
    plan: str | None
    cites: str | None
    actions: list[Any] | None
    plan_actions: list[Any] | None


class DeMinimisOut(Out):
    regulation: str | None
    ceiling: str
    used: str
    remaining: str


class PathwayOut(Out):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "siren": "853100006", "name": "Composites Charente SAS", "on": "2025-10-03", "loans_outstanding": "0.00",
        "loans_written_off": "0.00",
        "de_minimis": {"regulation": "2023/2831", "ceiling": "300000.00", "used": "46080.00", "remaining": "253920.00"},
        "dossiers": []}]})
    siren: str
    name: str
    on: str = Field(description="Jour (Europe/Paris) du calcul de minimis")
    dossiers: list[PathwayDossierOut]
    loans_outstanding: str = Field(description="Capital restant dû des prêts (hors prêts passés en perte)")
    loans_written_off: str = Field(description="Capital des prêts passés en perte")
    de_minimis: DeMinimisOut
