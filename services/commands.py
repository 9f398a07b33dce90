"""Use cases: one function per command of SCENARIOS.md, one unit of work each.

Shape of every command: load the dossier (checking the expected version), fire the trigger
through the lifecycle of `states/` with the command's named guards, apply the change, append
one event and queue the notifications — then commit. A guard that refuses raises a
`RuleViolation` before anything is written; the unit of work rolls back whatever was staged."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Callable

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from db import models as m
from notifications.rendering import DOCUMENT_LABELS
from programmes import Programme, regulations
from programmes.letters import missing_pieces
from rules.calendar import add_months, deadline, paris_date
from rules.council import check_session_held
from rules.de_minimis import PriorAid, headroom
from rules.documents import check_pieces_reviewed
from rules.eligibility import CompanyFacts, check_eligibility
from rules.errors import ConcurrencyConflict, InvalidInput, NotAllowed, RuleViolation
from rules.instruments import (
    ExpenseWindow,
    LineRequest,
    assess_line_claim,
    check_request_days,
    compute_line_aid,
    parse_request,
    validate_invoice_kinds,
)
from rules.money import (
    ZERO,
    AidBreakdown,
    Quote,
    assess_final_claim,
    check_advance,
    check_phase_days,
    compute_aid,
    parse_amount,
)
from rules.text import check_text
from services import deadlines
from services.clock import Clock
from services.events import append_event
from services.outbox import applicant_recipient, dossier_context, enqueue
from services.uow import UnitOfWork, save_dossier
from states.lifecycle import fire

DOCUMENT_KINDS = (
    "kbis", "financial_statement", "tax_certificate", "social_certificate", "rib",
    "de_minimis_attestation", "consultant_quote", "diagnostic_report", "action_plan", "phase2_quote",
    "invoice", "end_of_mission_report", "other",
)
# The file name of a piece filed without a file of its own (a scenario's, the demo's): French, as
# a person would have named it (the events record it; old events keep `{kind}.txt`).
PLACEHOLDER_NAMES = {
    "kbis": "extrait-kbis.txt", "financial_statement": "liasse-fiscale.txt",
    "tax_certificate": "attestation-regularite-fiscale.txt", "social_certificate": "attestation-urssaf.txt",
    "rib": "rib.txt", "de_minimis_attestation": "attestation-de-minimis.txt",
    "consultant_quote": "devis-prestataire.txt", "diagnostic_report": "rapport-de-diagnostic.txt",
    "action_plan": "plan-d-action.txt", "phase2_quote": "devis-phase-2.txt", "invoice": "facture.txt",
    "end_of_mission_report": "rapport-de-fin-de-mission.txt", "other": "autre-piece.txt",
}
CONSULTANT_KINDS = ("consultant_quote", "diagnostic_report", "action_plan", "phase2_quote",
                    "invoice", "end_of_mission_report")


@dataclass(frozen=True)
class Actor:
    """Who acts. `siren` scopes an applicant to its company's dossiers, `consultant` a
    consultant to its assignments, `regions` an officer/head/finance/auditor to its programmes."""

    name: str
    role: str
    siren: str | None = None
    consultant: str | None = None
    regions: tuple[str, ...] | None = None


SYSTEM = Actor("usine", "system")


@dataclass
class Outcome:
    dossier_id: int
    reference: str
    state: str
    version: int
    adjustments: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)


# -- the queries of the commands ------------------------------------------------------------
# Built once: SQLAlchemy then only binds the parameters (~25 µs a query) instead of building and
# keying a new statement at every call (~100 µs).
_ID = bindparam("dossier_id")
_DOCUMENTS_IN_ORDER = (select(m.Document).where(m.Document.dossier_id == _ID)
                       .order_by(m.Document.kind, m.Document.version))
# In version order: a dict built from the rows keeps each kind's latest.
_REVIEWS_IN_ORDER = (select(m.Document.kind, m.Document.review_status).where(m.Document.dossier_id == _ID)
                     .order_by(m.Document.kind, m.Document.version))
_DOCUMENT_VERSIONS = (select(m.Document.kind, func.max(m.Document.version))
                      .where(m.Document.dossier_id == _ID).group_by(m.Document.kind))
_OPEN_REQUESTS = select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == _ID,
                                                 m.DocumentRequest.status == "open")
# A request is written once here and never read back in the command: one Core INSERT … RETURNING
# id, not an ORM object and its flush.
_INSERT_REQUEST = insert(m.DocumentRequest.__table__).returning(m.DocumentRequest.__table__.c.id)
_COMPANY_BY_SIREN = select(m.Company).where(m.Company.siren == bindparam("siren"))
_DE_MINIMIS_OF_UNDERTAKING = select(m.DeMinimisAid).where(
    ((m.DeMinimisAid.source == "attestation") & (m.DeMinimisAid.dossier_id == _ID))
    | ((m.DeMinimisAid.source == "usine") & (m.DeMinimisAid.siren.in_(bindparam("sirens", expanding=True)))
       & (m.DeMinimisAid.dossier_id != _ID)))
_COUNCIL_SESSION_BY_CODE = select(m.CouncilSession).where(m.CouncilSession.code == bindparam("code"))
_CLAIMS = select(m.PaymentClaim).where(m.PaymentClaim.dossier_id == _ID).order_by(m.PaymentClaim.id)
_PAYMENTS_OF_PHASE = select(m.Payment.amount).where(m.Payment.dossier_id == _ID,
                                                    m.Payment.phase == bindparam("phase"))
_RECOVERIES_OF_PHASE = select(m.RecoveryOrder.amount).where(m.RecoveryOrder.dossier_id == _ID,
                                                            m.RecoveryOrder.phase == bindparam("phase"))


# -- the command frame ---------------------------------------------------------------------

class _Command:
    """What every command on an existing dossier does the same way."""

    def __init__(self, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                 expected_version: int | None):
        self.uow = uow
        self.session = uow.session
        self.now = clock.now()
        self.today = paris_date(self.now)
        self.actor = actor
        self.dossier = uow.dossier(dossier_id)
        if expected_version is not None and self.dossier.version != expected_version:
            raise ConcurrencyConflict(dossier_id, expected_version, self.dossier.version)
        check_scope(actor, self.dossier, uow.catalogue)
        self.programme: Programme = uow.catalogue.get(self.dossier.programme_id, self.dossier.programme_version)
        self.line = self.programme.line(self.dossier.line)
        self.state_before = self.dossier.status

    def move(self, trigger: str, guards: dict[str, Callable[[], None]] | None = None) -> str:
        return _move(self.dossier, trigger, self.actor, guards, self.line.shape)

    def record(self, command: str, data: dict, reason: str | None = None) -> dict:
        dossier_id, version = self.dossier.id, self.dossier.version
        self.dossier.updated_at = self.now
        # Every event bumps the dossier's version, even when nothing else changed and the clock
        # reads the instant already stored (a frozen clock, a scenario's two steps at one time):
        # concurrent writers conflict, and the chain tip read with the version stays the tip.
        flag_modified(self.dossier, "updated_at")
        if not save_dossier(self.session, self.dossier):
            raise ConcurrencyConflict(dossier_id, version, -1)
        return append_event(self.session, dossier=self.dossier, at=self.now, actor=self.actor.name,
                            role=self.actor.role, command=command, state_before=self.state_before,
                            data=data, reason=reason)

    def notify(self, kind: str, dedupe: str, **extra) -> dict | None:
        context = {"dossier": dossier_context(self.dossier, self.programme), **extra}
        return enqueue(self.session, kind=kind, dedupe_key=f"{self.dossier.reference}:{dedupe}",
                       now=self.now, recipient=applicant_recipient(self.dossier), context=context,
                       dossier=self.dossier)

    def outcome(self, adjustments=(), **details) -> Outcome:
        return Outcome(self.dossier.id, self.dossier.reference, self.dossier.status, self.dossier.version,
                       [a if isinstance(a, dict) else a.as_dict() for a in adjustments], details)


def _move(dossier: m.Dossier, trigger: str, actor: Actor, guards: dict[str, Callable[[], None]] | None = None,
          shape: str = "diagnostic") -> str:
    after = fire(dossier.status, trigger, role=actor.role, guards=guards or {}, shape=shape)
    # The only assignment of a dossier's status in the code base: always what the lifecycle fired.
    dossier.status = after
    return after


def _commit(uow: UnitOfWork, dossier_id: int | None = None) -> None:
    try:
        uow.commit()
    except StaleDataError:
        uow.rollback()
        raise ConcurrencyConflict(dossier_id or 0, -1, -1) from None


def check_scope(actor: Actor, dossier: m.Dossier, catalogue) -> None:
    """An applicant acts on its company's dossiers, a consultant on its assignments, regional
    staff on their region's programmes. A dossier out of scope is reported as not allowed."""
    if actor.siren is not None and dossier.company_facts["siren"] != actor.siren:
        raise NotAllowed("Ce dossier n'est pas celui de votre entreprise.")
    if actor.consultant is not None and dossier.consultant != actor.consultant:
        raise NotAllowed("Ce dossier ne vous est pas confié.")
    if actor.regions is not None:
        programme = catalogue.get(dossier.programme_id, dossier.programme_version)
        if programme.region not in actor.regions:
            raise NotAllowed("Ce dossier relève d'une autre région.")


def _list_of_kinds(raw, field: str) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(field, f"{field} : une liste non vide de types de pièces est attendue.")
    for i, kind in enumerate(raw):
        if kind not in DOCUMENT_KINDS:
            raise InvalidInput(f"{field}[{i}]", f"{field}[{i}] : type de pièce inconnu « {kind} ».")
    return list(dict.fromkeys(raw))


def _reason(raw, field: str = "reason", *, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(field, f"{field} : un motif est obligatoire.")
    if len(raw) > 2000:
        raise InvalidInput(field, f"{field} : 2 000 caractères au plus.")
    return check_text(raw, field, multiline=True).strip()


# -- documents -----------------------------------------------------------------------------

def _latest_review_statuses(session, dossier_id: int) -> dict[str, str | None]:
    """The review status of each kind's latest version (the guards read nothing else: columns,
    not Document objects)."""
    return dict(session.execute(_REVIEWS_IN_ORDER, {"dossier_id": dossier_id}).all())


def _documents_complete(session, dossier: m.Dossier, kinds, stage_label: str) -> Callable[[], None]:
    def guard() -> None:
        latest = _latest_review_statuses(session, dossier.id)
        missing = [k for k in kinds if k not in latest or latest[k] == "refused"]
        if missing:
            raise RuleViolation("documents_missing",
                                f"Pièces manquantes ou refusées pour {stage_label} : "
                                f"{', '.join(DOCUMENT_LABELS.get(k, k) for k in missing)}.",
                                field="documents", missing=missing)
    return guard


def _documents_reviewed(session, dossier: m.Dossier, programme: Programme) -> Callable[[], None]:
    def guard() -> None:
        if programme.documents.reviewed_before_eligibility:
            check_pieces_reviewed(_latest_review_statuses(session, dossier.id), programme.documents.candidacy,
                                  DOCUMENT_LABELS)
    return guard


def _next_document_version(session, dossier_id: int, kind: str) -> int:
    """The next version number of a kind of document: the dossier's versions are read once per
    unit of work (one query for every kind), then counted up here — `_store_document`, the only
    place documents are made, numbers every one through this function."""
    cache = session.info.setdefault("document_versions", {})
    versions = cache.get(dossier_id)
    if versions is None:
        with session.no_autoflush:
            versions = dict(session.execute(_DOCUMENT_VERSIONS, {"dossier_id": dossier_id}).all())
        cache[dossier_id] = versions
    versions[kind] = versions.get(kind, 0) + 1
    return versions[kind]


def _store_document(cmd_session, uow: UnitOfWork, *, dossier: m.Dossier, kind: str, filename: str,
                    content: bytes, content_type: str, actor: Actor, now: datetime) -> m.Document:
    key, digest = uow.storage.put(content)
    version = _next_document_version(cmd_session, dossier.id, kind)
    doc = m.Document(dossier_id=dossier.id, kind=kind, version=version, filename=filename,
                     content_type=content_type, size=len(content), sha256=digest, storage_key=key,
                     uploaded_by=actor.name, uploaded_role=actor.role, uploaded_at=now,
                     review_status="pending")
    cmd_session.add(doc)
    return doc


def _placeholder_content(dossier_reference: str, kind: str, actor: Actor, now: datetime) -> bytes:
    # `provide_documents` by kind (scenarios, demo, CLI) records that the piece was handed in;
    # its content is this declaration, hashed like any upload.
    return (f"Usine — pièce « {kind} » du dossier {dossier_reference}, remise par {actor.name} "
            f"({actor.role}) le {now.isoformat()}.\n").encode("utf-8")


def _fulfil_requests(session, dossier: m.Dossier, now: datetime) -> list[int]:
    """Close the open document requests whose every kind has been provided since."""
    closed = []
    requests = session.scalars(_OPEN_REQUESTS, {"dossier_id": dossier.id}).all()
    if not requests:
        return closed
    docs = session.scalars(_DOCUMENTS_IN_ORDER, {"dossier_id": dossier.id}).all()
    for req in requests:
        if all(any(d.kind == k and d.uploaded_at >= req.requested_at and d.review_status != "refused"
                   for d in docs) for k in req.kinds):
            req.status = "fulfilled"
            req.closed_at = now
            closed.append(req.id)
    return closed


# -- candidacy -----------------------------------------------------------------------------

def start_candidacy(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str, company: dict,
                    de_minimis_prior: list | None = None, documents: list | None = None,
                    line: int | None = None, cites: int | None = None, project: dict | None = None) -> Outcome:
    """The applicant starts a candidacy: a draft, which it can complete and submit later.
    `project`: what the company says of its project (the portal's form: title, description,
    expense and aid asked, as checked strings), recorded in the event."""
    return _create(uow=uow, clock=clock, actor=actor, programme_id=programme_id, company=company,
                   de_minimis_prior=de_minimis_prior, documents=documents, submit=False, line=line, cites=cites,
                   project=project)


def submit_candidacy(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str | None = None,
                     company: dict | None = None, de_minimis_prior: list | None = None,
                     documents: list | None = None, dossier_id: int | None = None,
                     line: int | None = None, cites: int | None = None,
                     expected_version: int | None = None) -> Outcome:
    """Submit within an open AMI window (a call) of the programme: a new candidacy in one go, or a
    draft started earlier (`dossier_id`). `line` is the programme's aid line (default 1); `cites`
    the company's earlier dossier of the same programme (Pays de la Loire)."""
    if dossier_id is None:
        if programme_id is None or company is None:
            raise InvalidInput("company", "company et programme sont obligatoires pour une nouvelle candidature.")
        return _create(uow=uow, clock=clock, actor=actor, programme_id=programme_id, company=company,
                       de_minimis_prior=de_minimis_prior, documents=documents, submit=True, line=line, cites=cites)
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    cmd.move("submit_candidacy", {"window_open": _window_open(cmd.programme, cmd.today)})
    call = cmd.programme.call_on(cmd.today)
    cmd.dossier.call_code = call.code if call else None
    cmd.record("submit_candidacy", {"programme": cmd.programme.key, "from_draft": True, "call": cmd.dossier.call_code})
    provided = set(cmd.session.scalars(select(m.Document.kind).where(m.Document.dossier_id == cmd.dossier.id)))
    cmd.notify("candidacy_received", "candidacy_received", submitted_at=cmd.now.isoformat(),
               **missing_pieces(cmd.programme, provided, cmd.today))
    _commit(uow, dossier_id)
    return cmd.outcome()


def _window_open(programme: Programme, today: date) -> Callable[[], None]:
    def guard() -> None:
        if programme.call_on(today) is None:
            ordered = sorted(programme.windows, key=lambda w: w.opens_on)
            # Name the calls around the day rather than every call of every year.
            nearest = [w for w in ordered if w.closes_on < today][-1:] + [w for w in ordered if w.opens_on > today][:1]
            windows = ", ".join(f"{(w.code + ' ') if w.code else ''}{w.opens_on:%d/%m/%Y}–{w.closes_on:%d/%m/%Y}"
                                for w in nearest) or "aucune"
            raise RuleViolation("window_closed",
                                f"Aucun appel à manifestation d'intérêt ouvert le {today:%d/%m/%Y} "
                                f"pour {programme.name} (fenêtres : {windows}).", field="at")
    return guard


def _line_number(programme: Programme, raw) -> int:
    if raw is None:
        return programme.dossier_lines[0].number
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidInput("line", f"line : un numéro de ligne d'aide entier est attendu (reçu « {raw} »).")
    line = programme.line(raw)
    if line.shape == "aid":
        raise InvalidInput("line", f"line : un dossier de la ligne « {line.name} » s'ouvre depuis un plan de progrès "
                           f"approuvé (open_aid_dossier), pas par une candidature.")
    return line.number


def _cited(session, programme: Programme, line_number: int, siren: str, cites) -> int | None:
    """The earlier dossier a candidacy cites: the same company's, in the same programme, of a
    line this line may cite."""
    if cites is None:
        return None
    if isinstance(cites, bool) or not isinstance(cites, int):
        raise InvalidInput("cites", "cites : l'identifiant d'un dossier antérieur de l'entreprise est attendu.")
    cited = session.get(m.Dossier, cites)
    line = programme.line(line_number)
    if cited is None or cited.company_facts["siren"] != siren or cited.programme_id != programme.id:
        raise InvalidInput("cites", "cites : ce dossier n'est pas un dossier antérieur de l'entreprise dans ce programme.")
    if cited.line not in line.may_cite:
        raise InvalidInput("cites", f"cites : la ligne « {line.name} » ne cite pas un dossier de la ligne {cited.line}.")
    return cited.id


def insert_dossier(session, dossier: m.Dossier, programme, now) -> None:
    """Add a new dossier and give it its reference, « OCC-2021-000042 » (region, Paris year of
    creation, row id): the reference needs the row id, so a unique placeholder stands for it
    until the flush."""
    dossier.reference = f"new-{id(dossier)}-{now.timestamp()}"[:32]
    session.add(dossier)
    session.flush()
    dossier.reference = f"{programme.id.split('-')[0][:3].upper()}-{paris_date(now).year}-{dossier.id:06d}"


def _create(*, uow: UnitOfWork, clock: Clock, actor: Actor, programme_id: str, company: dict,
            de_minimis_prior: list | None, documents: list | None, submit: bool,
            line: int | None = None, cites: int | None = None, project: dict | None = None) -> Outcome:
    now = clock.now()
    today = paris_date(now)
    programme = uow.catalogue.latest(programme_id)
    line_number = _line_number(programme, line)
    shape = programme.line(line_number).shape
    facts = CompanyFacts.parse(company)
    if actor.siren is not None and actor.siren != facts.siren:
        raise NotAllowed("Vous ne pouvez déposer une candidature que pour votre entreprise.", field="company.siren")
    if actor.role != "applicant":
        raise NotAllowed(f"Le rôle « {actor.role} » ne dépose pas de candidature.", field="as")
    prior = _parse_prior_aids(de_minimis_prior)
    kinds = list(programme.documents.candidacy) if documents is None else (
        _list_of_kinds(documents, "documents") if documents else [])
    session = uow.session
    cites_id = _cited(session, programme, line_number, facts.siren, cites)
    dossier = m.Dossier(
        reference="", programme_id=programme.id, programme_version=programme.version, status="draft",
        company_facts=facts.as_dict(), quotes={}, paid_total=ZERO, recovered_total=ZERO,
        submitted_at=now, updated_at=now, line=line_number, cites_id=cites_id,
    )
    if submit:
        # Refused here, nothing has been added to the session yet.
        _move(dossier, "submit_candidacy", actor, {"window_open": _window_open(programme, today)}, shape)
        call = programme.call_on(today)
        dossier.call_code = call.code if call else None
    company_row = session.scalar(_COMPANY_BY_SIREN, {"siren": facts.siren})
    if company_row is None:
        company_row = m.Company(siren=facts.siren, name=facts.name, email=facts.email, created_at=now)
        session.add(company_row)
    else:
        company_row.name = facts.name
        company_row.email = facts.email or company_row.email
    dossier.company = company_row
    insert_dossier(session, dossier, programme, now)
    for aid in prior:
        session.add(m.DeMinimisAid(siren=facts.siren, dossier_id=dossier.id, source="attestation",
                                   granted_on=aid.granted_on, amount=aid.amount))
    docs = [_store_document(session, uow, dossier=dossier, kind=kind, filename=PLACEHOLDER_NAMES.get(kind, f"{kind}.txt"),
                            content=_placeholder_content(dossier.reference, kind, actor, now),
                            content_type="text/plain", actor=actor, now=now) for kind in kinds]
    session.flush()
    append_event(session, dossier=dossier, at=now, actor=actor.name, role=actor.role,
                 command="submit_candidacy" if submit else "start_candidacy", state_before="draft",
                 data={"programme": programme.key, "programme_hash": programme.content_hash,
                       "company": facts.as_dict(), "line": line_number, "call": dossier.call_code,
                       "cites": cites_id,
                       "de_minimis_prior": [{"granted_on": a.granted_on.isoformat(), "amount": str(a.amount)} for a in prior],
                       "documents": [{"kind": d.kind, "version": d.version, "sha256": d.sha256,
                                      "filename": d.filename, "size": d.size} for d in docs],
                       **({"project": project} if project else {})})
    if submit:
        enqueue(session, kind="candidacy_received", dedupe_key=f"{dossier.reference}:candidacy_received",
                now=now, recipient=applicant_recipient(dossier),
                context={"dossier": dossier_context(dossier, programme), "submitted_at": now.isoformat(),
                         **missing_pieces(programme, kinds, today)},
                dossier=dossier)
    _commit(uow, dossier.id)
    return Outcome(dossier.id, dossier.reference, dossier.status, dossier.version)


def _parse_prior_aids(raw) -> list[PriorAid]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("de_minimis_prior", "de_minimis_prior : une liste {granted_on, amount} est attendue.")
    out = []
    for i, item in enumerate(raw):
        f = f"de_minimis_prior[{i}]"
        if not isinstance(item, dict) or "granted_on" not in item or "amount" not in item:
            raise InvalidInput(f, f"{f} : {{granted_on, amount}} attendu.")
        try:
            granted = date.fromisoformat(str(item["granted_on"]))
        except ValueError:
            raise InvalidInput(f"{f}.granted_on", f"{f}.granted_on : date AAAA-MM-JJ attendue.") from None
        out.append(PriorAid(granted, parse_amount(item["amount"], f"{f}.amount")))
    return out


def take_for_review(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                    expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    cmd.move("take_for_review")
    cmd.dossier.officer = actor.name
    cmd.record("take_for_review", {"officer": actor.name})
    _commit(uow, dossier_id)
    return cmd.outcome()


def request_documents(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, kinds: list,
                      expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    kinds = _list_of_kinds(kinds, "kinds")
    cmd.move("request_documents")
    r = cmd.programme.reminders
    lapse_on = deadline(cmd.today, r.lapse_after_days, shift_to_working_day=r.shift_to_working_day)
    request_id = cmd.session.execute(_INSERT_REQUEST, {
        "dossier_id": cmd.dossier.id, "kinds": kinds, "requested_by": actor.name, "requested_at": cmd.now,
        "requested_on": cmd.today, "lapse_on": lapse_on, "status": "open"}).scalar_one()
    cmd.record("request_documents", {"request_id": request_id, "kinds": kinds, "requested_on": cmd.today.isoformat(),
                                     "lapse_on": lapse_on.isoformat()})
    cmd.notify("documents_requested", f"docreq:{request_id}:requested", kinds=kinds,
               requested_on=cmd.today.isoformat(), lapse_on=lapse_on.isoformat())
    _commit(uow, dossier_id)
    return cmd.outcome(request_id=request_id, lapse_on=lapse_on.isoformat())


def upload_document(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, kind: str,
                    filename: str, content: bytes, content_type: str,
                    expected_version: int | None = None) -> Outcome:
    """One real file (API, web). Same trigger and guards as `provide_documents`."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    kind = _list_of_kinds([kind], "kind")[0]
    check_text(filename, "filename")
    cmd.move("provide_documents", {"uploader_may_provide": _uploader_may_provide(actor, [kind])})
    # The same file (same SHA-256) already on the dossier: kept (a version is never refused for
    # that), and said to the uploader — often a wrong file picked twice.
    same = cmd.session.execute(
        select(m.Document.kind, m.Document.version, m.Document.filename, m.Document.uploaded_at)
        .where(m.Document.dossier_id == cmd.dossier.id, m.Document.sha256 == hashlib.sha256(content).hexdigest())
        .order_by(m.Document.id).limit(1)).first()
    doc = _store_document(cmd.session, uow, dossier=cmd.dossier, kind=kind, filename=filename,
                          content=content, content_type=content_type, actor=actor, now=cmd.now)
    cmd.session.flush()
    fulfilled = _fulfil_requests(cmd.session, cmd.dossier, cmd.now)
    cmd.record("provide_documents", {"documents": [{"kind": kind, "version": doc.version, "sha256": doc.sha256,
                                                    "filename": filename, "size": len(content)}],
                                     "fulfilled_requests": fulfilled})
    _commit(uow, dossier_id)
    duplicate_of = ({"kind": same.kind, "version": same.version, "filename": same.filename,
                     "uploaded_at": same.uploaded_at.isoformat()} if same is not None else None)
    return cmd.outcome(document_id=doc.id, sha256=doc.sha256, version=doc.version, duplicate_of=duplicate_of)


def _uploader_may_provide(actor: Actor, kinds: list[str]) -> Callable[[], None]:
    def guard() -> None:
        if actor.role == "consultant":
            wrong = [k for k in kinds if k not in CONSULTANT_KINDS]
            if wrong:
                raise NotAllowed(f"Un prestataire ne dépose pas : {', '.join(wrong)}.", field="kinds")
    return guard


def provide_documents(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, kinds: list,
                      expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    kinds = _list_of_kinds(kinds, "kinds")
    cmd.move("provide_documents", {"uploader_may_provide": _uploader_may_provide(actor, kinds)})
    docs = [_store_document(cmd.session, uow, dossier=cmd.dossier, kind=k, filename=PLACEHOLDER_NAMES.get(k, f"{k}.txt"),
                            content=_placeholder_content(cmd.dossier.reference, k, actor, cmd.now),
                            content_type="text/plain", actor=actor, now=cmd.now) for k in kinds]
    cmd.session.flush()
    fulfilled = _fulfil_requests(cmd.session, cmd.dossier, cmd.now)
    cmd.record("provide_documents", {"documents": [{"kind": d.kind, "version": d.version, "sha256": d.sha256,
                                                    "filename": d.filename, "size": d.size} for d in docs],
                                     "fulfilled_requests": fulfilled})
    _commit(uow, dossier_id)
    return cmd.outcome()


def review_document(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, document_id: int,
                    decision: str, reason: str | None = None, expected_version: int | None = None) -> Outcome:
    """An officer accepts a document, or refuses it with a reason (a refused piece counts as missing)."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if decision not in ("accepted", "refused"):
        raise InvalidInput("decision", "decision : « accepted » ou « refused ».")
    reason = _reason(reason, required=decision == "refused")
    doc = cmd.session.get(m.Document, document_id)
    if doc is None or doc.dossier_id != cmd.dossier.id:
        raise InvalidInput("document_id", f"document_id : pièce {document_id} inconnue pour ce dossier.")
    if doc.review_status != "pending":
        raise NotAllowed(f"La pièce {document_id} a déjà été examinée ({doc.review_status}).", field="document_id")
    cmd.move("review_document")
    doc.review_status, doc.review_reason, doc.reviewed_by, doc.reviewed_at = decision, reason, actor.name, cmd.now
    cmd.record("review_document", {"document_id": doc.id, "kind": doc.kind, "version": doc.version,
                                   "decision": decision}, reason)
    _commit(uow, dossier_id)
    return cmd.outcome()


# -- eligibility and diagnostic --------------------------------------------------------------

def _consultant_name(consultant, *, required: bool) -> str | None:
    if consultant is None and not required:
        return None
    if not isinstance(consultant, str) or not consultant.strip() or len(consultant) > 200:
        raise InvalidInput("consultant", "consultant : le nom du prestataire référencé est obligatoire.")
    return check_text(consultant, "consultant").strip()


def declare_eligible(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, consultant: str | None = None,
                     phase1: dict | None = None, expenses: list | None = None, instruments: dict | None = None,
                     expected_version: int | None = None) -> Outcome:
    """The officer declares the dossier eligible. On a line with a diagnostic stage: the chosen
    consultant and the phase-1 quote (`phase1` days and day rate); on a line with instruments:
    its consulting days (`phase1`) or investment `expenses`, and the split asked between its
    `instruments` ({"subsidy", "loan"}, each cut to its caps). The amounts are estimated at once
    (the proposal freezes them later)."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    by_instrument = any(cmd.programme.phase(n).instruments for n in cmd.line.phases)
    if by_instrument:
        request = parse_request(cmd.programme, cmd.line.phases[0], days=phase1, expenses=expenses, instruments=instruments)
        consultant = _consultant_name(consultant, required=False)
        quote = request.quote
    else:
        consultant = _consultant_name(consultant, required=True)
        quote = Quote.parse(phase1, "phase1")
        request = None
    facts = CompanyFacts.parse(cmd.dossier.company_facts)
    found: dict = {}

    def company_eligible() -> None:
        found["size_class"] = check_eligibility(cmd.programme, facts)

    def line_amounts() -> None:
        if request is not None:
            check_request_days(cmd.programme, request, "phase1")
        else:
            check_phase_days(cmd.programme, cmd.line.phases[0], quote.days)

    cmd.move("declare_eligible", {
        "candidacy_documents_complete": _documents_complete(cmd.session, cmd.dossier, cmd.programme.documents.candidacy, "la candidature"),
        "candidacy_documents_reviewed": _documents_reviewed(cmd.session, cmd.dossier, cmd.programme),
        "company_eligible": company_eligible,
        "line_amounts": line_amounts,
    })
    cmd.dossier.size_class = found["size_class"]
    cmd.dossier.consultant = consultant
    cmd.dossier.quotes = {"line_request": request.to_record()} if request is not None else {"1": quote.as_dict()}
    estimate = _estimate(cmd)
    data = {"consultant": cmd.dossier.consultant, "size_class": found["size_class"], "company": facts.as_dict()}
    data |= {"request": request.to_record()} if request is not None else {"phase1": quote.as_dict()}
    data["estimate"] = estimate.to_record() if estimate else None
    cmd.record("declare_eligible", data)
    phase1 = None
    if quote is not None:
        line1 = estimate.lines[0] if estimate else None
        phase1 = {"days": quote.days, "day_rate": str(quote.day_rate),
                  "eligible_expense": str(line1.eligible_expense) if line1 else None}
    cmd.notify("eligibility_decision", "eligibility", decision="eligible", reason=None,
               consultant=cmd.dossier.consultant, phase1=phase1,
               aid=estimate.as_dict() if estimate and request is not None else None)
    _commit(uow, dossier_id)
    return cmd.outcome(estimate.adjustments if estimate else (), aid=estimate.as_dict() if estimate else None)


def _estimate(cmd: _Command) -> AidBreakdown | None:
    """The amounts as they would be, without the de minimis ceiling (judged at the proposal and
    the vote): shown to the officer and the company until the proposal freezes them. None when
    a figure the programme does not give is needed."""
    try:
        breakdown = compute_from_inputs(cmd.programme, rule_inputs(cmd.dossier, [], cmd.today), de_minimis=False)
    except RuleViolation:
        return None
    cmd.dossier.proposal = breakdown.to_record() | {"estimate": True}
    return breakdown


def declare_ineligible(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, reason: str,
                       expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    reason = _reason(reason)
    cmd.move("declare_ineligible")
    cmd.dossier.closed_at = cmd.now
    cmd.record("declare_ineligible", {}, reason)
    cmd.notify("eligibility_decision", "eligibility", decision="ineligible", reason=reason,
               consultant=None, phase1=None)
    _commit(uow, dossier_id)
    return cmd.outcome()


def accept_diagnostic(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                      expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    cmd.move("accept_diagnostic", {
        "diagnostic_documents_complete": _documents_complete(cmd.session, cmd.dossier, cmd.programme.documents.diagnostic, "le diagnostic"),
    })
    cmd.record("accept_diagnostic", {})
    _commit(uow, dossier_id)
    return cmd.outcome()


ACTION_THEMES = ("economic", "social", "environmental")


def parse_actions(raw, field: str = "actions") -> list[dict]:
    """A progress plan: numbered actions, each with a theme and an estimated budget (SPEC §11.4)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(field, f"{field} : au moins une action {{number, theme, budget}} est attendue.")
    if len(raw) > 100:
        raise InvalidInput(field, f"{field} : 100 actions au plus.")
    out, seen = [], set()
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(where, f"{where} : {{number, theme, budget}} attendu.")
        number = item.get("number")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidInput(f"{where}.number", f"{where}.number : un numéro d'action entier ≥ 1 est attendu.")
        if number in seen:
            raise InvalidInput(f"{where}.number", f"{where}.number : l'action n°{number} figure deux fois.")
        seen.add(number)
        if item.get("theme") not in ACTION_THEMES:
            raise InvalidInput(f"{where}.theme", f"{where}.theme : « economic », « social » ou « environmental ».")
        out.append({"number": number, "theme": item["theme"],
                    "budget": str(parse_amount(item.get("budget"), f"{where}.budget"))})
    return out


def submit_action_plan(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, phase2: dict | None = None,
                       actions: list | None = None, expected_version: int | None = None) -> Outcome:
    """The company files its plan: the phase-2 days and rate (Occitanie), or the numbered actions
    of a progress plan (Nouvelle-Aquitaine), as its line's `plan` says."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if cmd.line.plan == "actions":
        plan = parse_actions(actions)
        cmd.move("submit_action_plan", {"plan_valid": lambda: None})
        cmd.dossier.actions = plan
        cmd.record("submit_action_plan", {"actions": plan})
    else:
        quote = Quote.parse(phase2, "phase2")
        cmd.move("submit_action_plan", {"plan_valid": lambda: check_phase_days(cmd.programme, 2, quote.days)})
        cmd.dossier.quotes = {**cmd.dossier.quotes, "2": quote.as_dict()}
        cmd.record("submit_action_plan", {"phase2": quote.as_dict()})
    _commit(uow, dossier_id)
    return cmd.outcome()


# -- vote --------------------------------------------------------------------------------------

def _prior_de_minimis(session, dossier: m.Dossier) -> list[PriorAid]:
    """The applicant's attestation for this dossier plus every aid Usine granted under de minimis
    to the single undertaking (the SIREN and its declared linked companies)."""
    sirens = [dossier.company_facts["siren"], *dossier.company_facts.get("linked_sirens", [])]
    rows = session.scalars(_DE_MINIMIS_OF_UNDERTAKING, {"dossier_id": dossier.id, "sirens": sirens}).all()
    return [PriorAid(r.granted_on, r.amount, r.source) for r in rows]


def rule_inputs(dossier: m.Dossier, prior: list[PriorAid], granted_on: date) -> dict:
    """Everything the aid computation reads, recorded in the decision event for re-computation."""
    return {
        "size_class": dossier.size_class, "equity": dossier.company_facts["equity"],
        "quotes": dossier.quotes, "granted_on": granted_on.isoformat(),
        "de_minimis_prior": [{"granted_on": a.granted_on.isoformat(), "amount": str(a.amount), "source": a.source}
                             for a in prior],
    }


def compute_from_inputs(programme: Programme, inputs: dict, *, de_minimis: bool = True) -> AidBreakdown:
    """The aid breakdown from recorded rule inputs: used at the vote and by audit replays alike.
    Without `de_minimis`, an estimate: no ceiling applied, no loan GGE (no base rate needed)."""
    granted_on = date.fromisoformat(inputs["granted_on"])
    room = None
    if de_minimis:
        prior = [PriorAid(date.fromisoformat(a["granted_on"]), Decimal(a["amount"]), a["source"])
                 for a in inputs["de_minimis_prior"]]
        room = headroom(regulations(), granted_on=granted_on, prior=prior)
    if "line_request" in inputs["quotes"]:
        request = LineRequest.from_record(inputs["quotes"]["line_request"])
        return compute_line_aid(programme, size_class=inputs["size_class"], request=request,
                                equity=Decimal(inputs["equity"]),
                                de_minimis_headroom=room.remaining if room else None,
                                de_minimis_regulation=room.regulation if room else None,
                                gge_of=_gge_at(programme, granted_on) if de_minimis else None)
    quotes = {int(k): Quote(v["days"], Decimal(v["day_rate"])) for k, v in inputs["quotes"].items()}
    return compute_aid(programme, size_class=inputs["size_class"], quotes=quotes,
                       equity=Decimal(inputs["equity"]), de_minimis_headroom=room.remaining if room else None,
                       de_minimis_regulation=room.regulation if room else None)


def _gge_at(programme: Programme, granted_on: date):
    """The loan's gross grant equivalent at the grant date, on the schedule it would have if
    disbursed that day (SPEC §11.3); refused where no base-rate period covers the date."""
    from rules.gge import loan_gge

    def gge_of(terms) -> dict:
        return loan_gge(terms.principal, terms.annual_rate, terms.deferral_months, terms.instalments, granted_on,
                        regulations(), margin=programme.money.gge_margin).as_dict()
    return gge_of


def _session_for(cmd: _Command, code, *, create: bool, held_today: bool = False) -> m.CouncilSession | None:
    """The session of that code. An unknown code is created when `create`: by a first proposal,
    dated the programme's lead time ahead; by the vote of an adjourned dossier (`held_today`),
    held that very day — the vote being recorded is its sitting."""
    if not isinstance(code, str) or not code.strip() or len(code) > 64:
        raise InvalidInput("session", "session : identifiant de séance attendu (64 caractères au plus).")
    code = check_text(code, "session").strip()
    session_row = cmd.session.scalar(_COUNCIL_SESSION_BY_CODE, {"code": code})
    if session_row is None and create:
        c = cmd.programme.council
        session_date = cmd.today if held_today else date.fromordinal(cmd.today.toordinal() + c.session_after_days)
        session_row = m.CouncilSession(
            code=code, programme_id=cmd.programme.id, session_date=session_date,
            agenda_closes_on=date.fromordinal(session_date.toordinal() - c.agenda_closes_days_before),
            created_at=cmd.now)
        cmd.session.add(session_row)
        cmd.session.flush()
        deadlines.mark_programme(cmd.session, cmd.programme.id, cmd.today)
    return session_row


def _vote_documents(cmd: _Command) -> tuple[str, ...]:
    return cmd.line.vote_documents if cmd.line.vote_documents is not None else cmd.programme.documents.vote


def propose_for_vote(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, session: str,
                     expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    council = _session_for(cmd, session, create=True)
    prior = _prior_de_minimis(cmd.session, cmd.dossier)
    found: dict = {}

    def action_plan_submitted() -> None:
        if cmd.line.plan == "actions":
            if not cmd.dossier.actions:
                raise RuleViolation("documents_missing", "Le plan de progrès (ses actions numérotées) n'a pas été déposé.",
                                    field="actions")
        elif "2" not in cmd.dossier.quotes:
            raise RuleViolation("documents_missing", "Le plan d'action (jours et taux de la phase 2) n'a pas été déposé.",
                                field="phase2")

    def agenda_open() -> None:
        if cmd.today > council.agenda_closes_on:
            raise RuleViolation("agenda_closed", f"L'ordre du jour de la séance {council.code} est clos depuis le "
                                f"{council.agenda_closes_on:%d/%m/%Y}.", field="session")

    def amounts_within_caps() -> None:
        found["inputs"] = rule_inputs(cmd.dossier, prior, council.session_date)
        found["breakdown"] = compute_from_inputs(cmd.programme, found["inputs"])

    cmd.move("propose_for_vote", {
        "action_plan_submitted": action_plan_submitted,
        "vote_documents_complete": _documents_complete(cmd.session, cmd.dossier, _vote_documents(cmd), "le vote"),
        "agenda_open": agenda_open,
        "amounts_within_caps": amounts_within_caps,
    })
    breakdown: AidBreakdown = found["breakdown"]
    cmd.dossier.session_id = council.id
    cmd.dossier.proposal = breakdown.to_record() | {"session": council.code}
    cmd.record("propose_for_vote", {"session": council.code, "session_date": council.session_date.isoformat(),
                                    "rule_inputs": found["inputs"], "proposal": breakdown.to_record()})
    _commit(uow, dossier_id)
    return cmd.outcome(breakdown.adjustments, aid=breakdown.as_dict())


def record_vote(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, session: str, outcome: str,
                deliberation: str | None = None, expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if outcome not in ("approved", "rejected", "adjourned"):
        raise InvalidInput("outcome", "outcome : « approved », « rejected » ou « adjourned ».")
    if outcome != "adjourned":
        if not isinstance(deliberation, str) or not deliberation.strip() or len(deliberation) > 64:
            raise InvalidInput("deliberation", "deliberation : le numéro de délibération est obligatoire.")
        deliberation = check_text(deliberation, "deliberation").strip()
    adjourned = bool((cmd.dossier.proposal or {}).get("adjourned"))
    council = _session_for(cmd, session, create=adjourned, held_today=True)
    prior = _prior_de_minimis(cmd.session, cmd.dossier)
    found: dict = {}

    def on_session_agenda() -> None:
        if council is None or (cmd.dossier.session_id != council.id and not adjourned):
            raise NotAllowed(f"Le dossier n'est pas inscrit à l'ordre du jour de la séance « {session} ».",
                             field="session")
        if adjourned:
            # An adjourned dossier waits for the next session (SPEC §3): not the one that
            # adjourned it, nor any session held on or before it.
            adjourning = cmd.session.get(m.CouncilSession, cmd.dossier.session_id)
            if adjourning is not None and (council.id == adjourning.id
                                           or council.session_date <= adjourning.session_date):
                raise NotAllowed(
                    f"Le dossier a été ajourné par la séance « {adjourning.code} » du "
                    f"{adjourning.session_date:%d/%m/%Y} : il est voté à une séance suivante.", field="session")

    def session_held() -> None:
        check_session_held(council.code, council.session_date, cmd.today)

    def amounts_within_caps() -> None:
        # The de minimis ceiling is judged at the grant date: the vote.
        found["inputs"] = rule_inputs(cmd.dossier, prior, cmd.today)
        found["breakdown"] = compute_from_inputs(cmd.programme, found["inputs"])

    cmd.move(f"vote_{outcome}", {"on_session_agenda": on_session_agenda, "session_held": session_held,
                                 "amounts_within_caps": amounts_within_caps})
    cmd.dossier.session_id = council.id
    data = {"session": council.code, "outcome": outcome, "deliberation": deliberation}
    aid = None
    adjustments = ()
    if outcome == "approved":
        breakdown: AidBreakdown = found["breakdown"]
        adjustments = breakdown.adjustments
        cmd.dossier.voted = breakdown.to_record()
        # What is paid out as grants; a loan is disbursed and repaid apart (SPEC §11.3).
        cmd.dossier.aid_total = breakdown.subsidy_total
        cmd.dossier.deliberation = deliberation
        cmd.dossier.voted_on = cmd.today
        cutoff = expense_window(cmd.programme, cmd.dossier).ends_on
        months = cmd.programme.money.payment_deadline_months
        if cutoff is not None and months is not None:
            cmd.dossier.payment_deadline_on = deadline(add_months(cutoff, months), 0,
                                                       shift_to_working_day=cmd.programme.reminders.shift_to_working_day)
        for line in breakdown.lines:
            counted = []
            if line.legal_basis == "de_minimis" and line.aid > 0:
                counted.append(line.aid)
            # A loan counts at its gross grant equivalent, never at its nominal (SPEC §11.3).
            if line.loan and line.loan["legal_basis"] == "de_minimis" and line.loan.get("gge"):
                gge = Decimal(line.loan["gge"]["gge"])
                if gge > 0:
                    counted.append(gge)
            for amount in counted:
                cmd.session.add(m.DeMinimisAid(siren=cmd.dossier.company_facts["siren"], dossier_id=cmd.dossier.id,
                                               source="usine", granted_on=cmd.today, amount=amount,
                                               regulation=breakdown.de_minimis_regulation))
        aid = breakdown.as_dict()
        data |= {"rule_inputs": found["inputs"], "voted": breakdown.to_record(),
                 "payment_deadline_on": cmd.dossier.payment_deadline_on.isoformat() if cmd.dossier.payment_deadline_on else None}
    elif outcome == "rejected":
        cmd.dossier.deliberation = deliberation
        cmd.dossier.closed_at = cmd.now
    else:
        cmd.dossier.proposal = {**(cmd.dossier.proposal or {}), "adjourned": True}
    cmd.record("record_vote", data)
    subsidies = found["breakdown"].subsidy_total if outcome == "approved" else None
    loans = [line.loan for line in found["breakdown"].lines if line.loan] if outcome == "approved" else []
    cmd.notify("vote_result", f"vote:{council.code}:{outcome}", outcome=outcome, session=council.code,
               session_date=council.session_date.isoformat(), deliberation=deliberation, aid=aid,
               convention_required=bool(subsidies is not None and subsidies > cmd.programme.money.convention_threshold),
               loans=loans)
    _commit(uow, dossier_id)
    return cmd.outcome(adjustments, aid=aid)


# -- payments ----------------------------------------------------------------------------------

def _voted_line(dossier: m.Dossier, phase: int) -> dict:
    lines = (dossier.voted or {}).get("lines", [])
    for line in lines:
        if line["phase"] == phase:
            return line
    # A dossier of one line may call it 1 (a Nouvelle-Aquitaine aid dossier carries out the
    # programme's line 2 but has one phase of its own).
    if phase == 1 and len(lines) == 1:
        return lines[0]
    raise InvalidInput("phase", f"phase : la phase {phase} n'a pas été votée pour ce dossier.")


def expense_window(programme: Programme, dossier: m.Dossier) -> ExpenseWindow:
    """The days an expense of the dossier counts: the programme's fixed cut-off, or from the
    dossier's submission (an aid dossier's opening) to N months after its vote."""
    months = programme.money.expense_window_months_after_vote
    if months is not None:
        ends = add_months(dossier.voted_on, months) if dossier.voted_on else None
        return ExpenseWindow(paris_date(dossier.submitted_at), ends)
    return ExpenseWindow(None, programme.money.expense_cutoff)


def _claims(session, dossier_id: int) -> list[m.PaymentClaim]:
    # Read before the command adds its own rows: nothing of the command's to flush first.
    with session.no_autoflush:
        return list(session.scalars(_CLAIMS, {"dossier_id": dossier_id}).all())


def _net_paid(session, dossier_id: int, phase: int) -> Decimal:
    with session.no_autoflush:  # read before this payment is added
        paid = session.scalars(_PAYMENTS_OF_PHASE, {"dossier_id": dossier_id, "phase": phase}).all()
        recovered = session.scalars(_RECOVERIES_OF_PHASE, {"dossier_id": dossier_id, "phase": phase}).all()
    return sum(paid, ZERO) - sum(recovered, ZERO)


def claim_payment(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, phase, kind: str,
                  amount=None, invoices: list | None = None, expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if phase not in (1, 2) and not (isinstance(phase, int) and any(p.number == phase for p in cmd.programme.phases)):
        raise InvalidInput("phase", f"phase : numéro de phase inconnu « {phase} ».")
    if kind not in ("advance", "final"):
        raise InvalidInput("kind", "kind : « advance » ou « final ».")
    claims = _claims(cmd.session, cmd.dossier.id)
    parsed_amount = parse_amount(amount, "amount", allow_zero=False) if kind == "advance" else None
    voted_lines = (cmd.dossier.voted or {}).get("lines", [])
    by_instrument = bool((cmd.dossier.voted or {}).get("by_instrument"))
    if kind == "final":
        consulting = True
        if by_instrument:
            try:
                consulting = _voted_line(cmd.dossier, phase).get("expense_kind") == "days"
            except InvalidInput:
                consulting = bool(voted_lines) and voted_lines[0].get("expense_kind") == "days"
        lines = validate_invoice_kinds(invoices, consulting=consulting)
    found: dict = {}

    def payment_deadline_open() -> None:
        due = cmd.dossier.payment_deadline_on
        if due is not None and cmd.today > due:
            raise RuleViolation("payment_deadline", f"Le délai de demande de paiement a expiré le {due:%d/%m/%Y}.",
                                field="at")

    def claim_valid() -> None:
        line = _voted_line(cmd.dossier, phase)
        voted_aid = Decimal(line["aid"])
        same_phase = [c for c in claims if c.phase == line["phase"]]
        if any(c.kind == "final" for c in same_phase):
            raise NotAllowed(f"La demande de solde de la phase {phase} a déjà été faite.", field="kind")
        if voted_aid <= 0 and by_instrument:
            raise NotAllowed(f"La ligne {line['phase']} n'a pas de subvention votée à demander.", field="phase")
        if kind == "advance":
            advances = sum((c.amount_claimed for c in same_phase if c.kind == "advance"), ZERO)
            check_advance(cmd.programme, phase=line["phase"], amount=parsed_amount, voted_aid=voted_aid,
                          advances_so_far=advances)
        elif by_instrument:
            found["assessment"] = assess_line_claim(cmd.programme, size_class=cmd.dossier.size_class, voted_line=line,
                                                    invoices=lines, window=expense_window(cmd.programme, cmd.dossier))
        else:
            window = expense_window(cmd.programme, cmd.dossier)
            found["assessment"] = assess_final_claim(cmd.programme, phase=line["phase"], invoices=lines,
                                                     voted_aid=voted_aid, voted_expense=Decimal(line["eligible_expense"]),
                                                     window=window)
        found["phase"] = line["phase"]

    cmd.move("claim_payment", {"payment_deadline_open": payment_deadline_open, "claim_valid": claim_valid})
    assessment = found.get("assessment")
    phase = found["phase"]
    claim = m.PaymentClaim(
        dossier_id=cmd.dossier.id, phase=phase, kind=kind,
        amount_claimed=parsed_amount if kind == "advance" else assessment.claimed_expense,
        invoices=[ln.as_dict() for ln in lines] if kind == "final" else [],
        assessment=assessment.to_record() if assessment else None, status="pending", claimed_at=cmd.now)
    cmd.session.add(claim)
    cmd.session.flush()
    cmd.record("claim_payment", {"claim_id": claim.id, "phase": phase, "kind": kind,
                                 "amount": str(parsed_amount) if parsed_amount is not None else None,
                                 "invoices": claim.invoices, "assessment": claim.assessment})
    _commit(uow, dossier_id)
    return cmd.outcome(assessment.adjustments if assessment else (), claim_id=claim.id,
                       excluded_lines=list(assessment.excluded_lines) if assessment else [])


def pay(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, claim_id: int | None = None,
        expected_version: int | None = None) -> Outcome:
    """Finance pays the oldest pending claim (or the one named): an advance as claimed; a final
    claim as the aid justified minus what the phase already received — below zero, a recovery
    order. When every phase's final claim is paid, the dossier closes and the rest is cancelled."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    claims = _claims(cmd.session, cmd.dossier.id)
    pending = [c for c in claims if c.status == "pending" and (claim_id is None or c.id == claim_id)]

    def claim_pending() -> None:
        if not pending:
            raise NotAllowed("Aucune demande de paiement en attente.", field="claim_id")

    cmd.move("pay", {"claim_pending": claim_pending})
    claim = pending[0]
    net_before = _net_paid(cmd.session, cmd.dossier.id, claim.phase)
    voted_aid = Decimal(_voted_line(cmd.dossier, claim.phase)["aid"])
    if claim.kind == "advance":
        amount = claim.amount_claimed
    else:
        amount = Decimal(claim.assessment["justified_aid"]) - net_before
    # Never more than voted for the phase, whatever happened before.
    amount = min(amount, voted_aid - net_before)
    recovery = None
    if amount >= 0:
        cmd.session.add(m.Payment(dossier_id=cmd.dossier.id, claim_id=claim.id, phase=claim.phase, kind=claim.kind,
                                  amount=amount, paid_at=cmd.now))
        cmd.dossier.paid_total = cmd.dossier.paid_total + amount
    else:
        recovery = -amount
        cmd.session.add(m.RecoveryOrder(dossier_id=cmd.dossier.id, claim_id=claim.id, phase=claim.phase,
                                        amount=recovery, issued_at=cmd.now))
        cmd.dossier.recovered_total = cmd.dossier.recovered_total + recovery
        amount = ZERO
    claim.status = "paid"
    claim.paid_at = cmd.now
    net_paid = cmd.dossier.paid_total - cmd.dossier.recovered_total
    closing = subsidies_settled(cmd.dossier, claims) and loan_settled(cmd.dossier)
    data = {"claim_id": claim.id, "phase": claim.phase, "kind": claim.kind, "amount": str(amount),
            "recovery": str(recovery) if recovery is not None else None, "paid_total": str(net_paid)}
    line_label = None
    if (cmd.dossier.voted or {}).get("by_instrument"):
        line_label = f"ligne « {cmd.programme.phase(claim.phase).name} »"
    cmd.notify("payment_issued", f"payment:{claim.id}", phase=claim.phase, payment_kind=claim.kind, line_label=line_label,
               amount=str(amount), paid_total=str(net_paid),
               recovery_amount=str(recovery) if recovery is not None else None,
               excluded_lines=(claim.assessment or {}).get("excluded_lines", []))
    if closing:
        cmd.move("close")
        _close(cmd, reason="solde payé")
        data["closed"] = True
    cmd.record("pay", data)
    _commit(uow, dossier_id)
    return cmd.outcome(paid=str(amount), recovery=str(recovery) if recovery is not None else None)


def subsidies_settled(dossier: m.Dossier, claims: list[m.PaymentClaim]) -> bool:
    """Every voted phase's final claim paid — on a line with instruments, every line whose
    subsidy is not zero (a loan-only line has no claim to make)."""
    record = dossier.voted or {}
    lines = record.get("lines", [])
    if record.get("by_instrument"):
        lines = [line for line in lines if Decimal(line["aid"]) > 0]
    finals_paid = {c.phase for c in claims if c.kind == "final" and c.status == "paid"}
    return {line["phase"] for line in lines} <= finals_paid


def loan_settled(dossier: m.Dossier) -> bool:
    """No loan voted, or the loan disbursed and its principal repaid."""
    voted_loan = any(line.get("loan") for line in (dossier.voted or {}).get("lines", []))
    if not voted_loan:
        return True
    return dossier.loan is not None and dossier.loan_outstanding == 0


def _close(cmd: _Command, *, reason: str, loan: dict | None = None) -> None:
    """Close the dossier and send the closing letter; `loan` (the loan's figures at closing, as
    `services.loans.loan_figures` gives them) puts the loan's own balance in the letter."""
    net_paid = cmd.dossier.paid_total - cmd.dossier.recovered_total
    remainder = max((cmd.dossier.aid_total or ZERO) - net_paid, ZERO)
    cmd.dossier.cancelled_remainder = remainder
    cmd.dossier.closed_at = cmd.now
    cmd.notify("dossier_closed", "closed", aid_total=str(cmd.dossier.aid_total or ZERO), paid_total=str(net_paid),
               cancelled_remainder=str(remainder), closed_on=cmd.today.isoformat(),
               **({"loan": loan} if loan else {}))


# -- exits -------------------------------------------------------------------------------------

def withdraw(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, reason: str,
             expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    reason = _reason(reason)
    cmd.move("withdraw")
    cmd.dossier.closed_at = cmd.now
    _close_requests(cmd, "closed")
    cmd.record("withdraw", {}, reason)
    _commit(uow, dossier_id)
    return cmd.outcome()


def _close_requests(cmd: _Command, status: str) -> None:
    # No autoflush: the dossier's change is flushed once, with its event, so that its version
    # counts its events (`services.audit.verify` tells a cut tail from a backdated last event by it).
    with cmd.session.no_autoflush:
        requests = cmd.session.scalars(_OPEN_REQUESTS, {"dossier_id": cmd.dossier.id}).all()
    for req in requests:
        req.status = status
        req.closed_at = cmd.now


def lapse(*, uow: UnitOfWork, clock: Clock, dossier_id: int, reason: str, request_id: int | None = None,
          actor: Actor = SYSTEM) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, None)
    cmd.move("lapse")
    cmd.dossier.closed_at = cmd.now
    _close_requests(cmd, "lapsed")
    cmd.record("lapse", {"request_id": request_id}, reason)
    cmd.notify("dossier_lapsed", "lapsed", reason=reason, lapsed_on=cmd.today.isoformat())
    _commit(uow, dossier_id)
    return cmd.outcome()


def remind(*, uow: UnitOfWork, clock: Clock, dossier_id: int, request_id: int, after_days: int, kind: str,
           actor: Actor = SYSTEM) -> Outcome | None:
    """Send one reminder step of one document request, once: None when it was already sent."""
    cmd = _Command(uow, clock, actor, dossier_id, None)
    req = cmd.session.get(m.DocumentRequest, request_id)
    cmd.move("remind")
    try:
        note = cmd.notify(kind, f"docreq:{request_id}:{after_days}", kinds=req.kinds,
                          requested_on=req.requested_on.isoformat(), lapse_on=req.lapse_on.isoformat(),
                          step_day=after_days)
        if note is None:
            return None
        cmd.record("remind", {"request_id": request_id, "after_days": after_days, "kind": kind})
        _commit(uow, dossier_id)
    except IntegrityError:  # another sweep queued it first
        uow.rollback()
        return None
    return cmd.outcome()


def close_after_payment_deadline(*, uow: UnitOfWork, clock: Clock, dossier_id: int,
                                 actor: Actor = SYSTEM) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, None)
    pending = [c for c in _claims(cmd.session, cmd.dossier.id) if c.status == "pending"]
    if pending:
        raise NotAllowed("Une demande de paiement est en attente : le dossier sera clôturé après son paiement.")
    cmd.move("close")
    _close(cmd, reason="délai de paiement expiré")
    cmd.record("close", {"cause": "payment_deadline", "payment_deadline_on": cmd.dossier.payment_deadline_on.isoformat(),
                         "cancelled_remainder": str(cmd.dossier.cancelled_remainder)},
               "délai de demande de solde expiré : le reliquat est annulé")
    _commit(uow, dossier_id)
    return cmd.outcome()
