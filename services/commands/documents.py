"""The pieces of a dossier: request, upload, provide and review documents — with the
storage, versioning and request-fulfilment helpers every command that files a piece uses, and
the guards that say a stage's pieces are all there."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Callable

from sqlalchemy import select

from db import models as m
from notifications.rendering import DOCUMENT_LABELS
from programmes import Programme
from rules.documents import check_pieces_reviewed, request_lapses_on
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.text import check_text
from services.clock import Clock
from services.commands.base import (
    _DOCUMENT_VERSIONS,
    _DOCUMENTS_IN_ORDER,
    _INSERT_REQUEST,
    _OPEN_REQUESTS,
    _REVIEWS_IN_ORDER,
    Actor,
    Outcome,
    _Command,
    _commit,
    _list_of_kinds,
    _reason,
)
from services.uow import UnitOfWork

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


def request_documents(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, kinds: list,
                      expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    kinds = _list_of_kinds(kinds, "kinds")
    cmd.move("request_documents")
    r = cmd.programme.reminders
    lapse_on = request_lapses_on(cmd.today, lapse_after_days=r.lapse_after_days,
                                 shift_to_working_day=r.shift_to_working_day)
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
