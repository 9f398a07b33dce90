"""The command frame every use case shares: who acts (`Actor`), what a command returns
(`Outcome`), the frame `_Command` (load, check the version and the scope, fire the lifecycle,
record the event, queue the notification), `_move` — the one place a dossier's status is
assigned —, `_commit`, the prebuilt queries and the argument parsers of every command.

Shape of every command: load the dossier (checking the expected version), fire the trigger
through the lifecycle of `states/` with the command's named guards, apply the change, append
one event and queue the notifications — then commit. A guard that refuses raises a
`RuleViolation` before anything is written; the unit of work rolls back whatever was staged."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from db import models as m
from programmes import Programme
from rules.calendar import paris_date
from rules.errors import ConcurrencyConflict, InvalidInput, NotAllowed
from rules.text import check_text
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
