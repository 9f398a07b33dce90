"""Documents (pièces) of a dossier: list, upload (multipart, SHA-256, 20 MiB, PDF/JPEG/PNG/ODT/DOCX
checked by content), metadata and download. A new upload of a kind is a new version; nothing is
ever overwritten."""
from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from api.deps import etag, get_clock, get_uow_factory, parse_if_match, require_roles, scoped_dossier
from api.files import file_too_large
from api.idempotency import execute
from api.problems import Problem, problem_responses
from api.schemas import DocumentKind, DocumentOut, UploadOut
from db import models as m
from notifications.rendering import DOCUMENT_LABELS
from rules.documents import CONSULTANT_NEED_TO_KNOW, piece_visible
from services import commands
from services.commands import CONSULTANT_KINDS, Actor
from services.files import ALLOWED, content_disposition, safe_filename, sniff
from services.storage import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from states.lifecycle import roles_of

router = APIRouter(tags=["pièces"])
DOSSIER_READERS = ("applicant", "consultant", "officer", "head", "finance", "auditor")
DossierId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# Who files pieces: the lifecycle says (applicant, consultant, and officers for pieces received by post).
UPLOADERS = tuple(r for r in roles_of("provide_documents") if r != "system")
DocumentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def document_view(d: m.Document) -> dict:
    return {"id": d.id, "kind": d.kind, "version": d.version, "filename": d.filename, "content_type": d.content_type,
            "size": d.size, "sha256": d.sha256, "uploaded_by": d.uploaded_by, "uploaded_role": d.uploaded_role,
            "uploaded_at": d.uploaded_at.isoformat(), "review_status": d.review_status, "review_reason": d.review_reason}


@router.get("/dossiers/{dossier_id}/documents", response_model=list[DocumentOut],
            responses=problem_responses(401, 403, 404, 422), summary="Les pièces du dossier, toutes versions")
def list_documents(dossier_id: DossierId, actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                   uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        dossier = scoped_dossier(dossier_id, actor, uow)
        docs = uow.session.scalars(select(m.Document).where(m.Document.dossier_id == dossier.id)
                                   .order_by(m.Document.kind, m.Document.version)).all()
        # Rule consultant_need_to_know (rules/documents.py): a consultant's list holds its mission's pieces only.
        return [document_view(d) for d in docs if piece_visible(actor.role, d.kind)]


@router.post("/dossiers/{dossier_id}/documents", status_code=201, response_model=UploadOut,
             responses=problem_responses(401, 403, 404, 409, 413, 415, 422),
             summary=f"Déposer un fichier (PDF, JPEG, PNG, ODT, DOCX ; {MAX_UPLOAD_MB} Mo au plus)",
             openapi_extra={"requestBody": {"content": {"multipart/form-data": {"example": {
                 "kind": "diagnostic_report", "file": "%PDF-1.7 … (contenu du fichier)"}}}}})
def upload_document(request: Request, dossier_id: DossierId,
                    kind: Annotated[DocumentKind, Form(description="Type de pièce")],
                    file: Annotated[UploadFile, File(description="Le fichier ; son type est lu dans son contenu")],
                    actor: Annotated[Actor, Depends(require_roles(*UPLOADERS))],
                    uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Le type du fichier est lu dans ses premiers octets (un .exe renommé .pdf est refusé, 415) ;
    le nom est réduit à un nom de base sans chemin ; l'empreinte SHA-256 est enregistrée. Un
    prestataire ne dépose que ses pièces (devis, rapport de diagnostic, plan d'action, factures) ;
    un chargé de mission dépose les pièces reçues par courrier."""
    if actor.role == "consultant" and kind not in CONSULTANT_KINDS:
        raise Problem(403, f"Un prestataire ne dépose pas de pièce « {kind} ».", rule="not_allowed", field="kind")
    content = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise file_too_large()
    if not content:
        raise Problem(422, "Le fichier est vide.", rule="invalid_input", field="file")
    content_type = sniff(content)
    if content_type is None:
        raise Problem(415, "Type de fichier refusé : seuls PDF, JPEG, PNG, ODT et DOCX sont acceptés "
                      "(le type est lu dans le contenu, pas dans le nom).", rule="file_type", field="file",
                      allowed=sorted(ALLOWED))
    filename = safe_filename(file.filename, content_type, kind)
    digest = hashlib.sha256(content).hexdigest()
    expected = parse_if_match(request.headers.get("if-match"))

    def work(uow):
        dossier = scoped_dossier(dossier_id, actor, uow)
        outcome = commands.upload_document(uow=uow, clock=clock, actor=actor, dossier_id=dossier.id, kind=kind,
                                           filename=filename, content=content, content_type=content_type,
                                           expected_version=expected)
        doc = uow.session.get(m.Document, outcome.details["document_id"])
        body = {"document": document_view(doc), "dossier_id": outcome.dossier_id, "state": outcome.state,
                "version": outcome.version}
        return 201, body, {"ETag": etag(outcome.version),
                           "Location": f"/dossiers/{outcome.dossier_id}/documents/{doc.id}"}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock,
                   payload={"kind": kind, "filename": filename, "sha256": digest}, work=work, dossier_id=dossier_id)


def _document(uow, dossier_id: int, document_id: int, actor: Actor) -> m.Document:
    dossier = scoped_dossier(dossier_id, actor, uow)
    doc = uow.session.get(m.Document, document_id)
    if doc is None or doc.dossier_id != dossier.id:
        raise Problem(404, "Pièce introuvable.", rule="not_found")
    if not piece_visible(actor.role, doc.kind):
        raise Problem(403, f"La pièce « {DOCUMENT_LABELS.get(doc.kind, doc.kind)} » n'est pas communiquée au "
                      "prestataire : sa mission n'en a pas besoin (protection des données personnelles).",
                      rule=CONSULTANT_NEED_TO_KNOW, field="kind")
    return doc


@router.get("/dossiers/{dossier_id}/documents/{document_id}", response_model=DocumentOut,
            responses=problem_responses(401, 403, 404, 422), summary="Une pièce : métadonnées et empreinte")
def get_document(dossier_id: DossierId, document_id: DocumentId,
                 actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))], uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        return document_view(_document(uow, dossier_id, document_id, actor))


@router.get("/dossiers/{dossier_id}/documents/{document_id}/content",
            responses={**problem_responses(401, 403, 404, 422),
                       200: {"description": "Le fichier, tel que déposé",
                             "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                         for t in [*ALLOWED, "text/plain"]}}},
            response_class=Response, summary="Télécharger une pièce")
def download_document(dossier_id: DossierId, document_id: DocumentId,
                      actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                      uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        doc = _document(uow, dossier_id, document_id, actor)
        content = uow.storage.get(doc.storage_key)
        media = doc.content_type if doc.content_type in ALLOWED else "text/plain; charset=utf-8"
        headers = {"Content-Disposition": content_disposition(doc.filename), "X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": "default-src 'none'; sandbox", "ETag": f'"{doc.sha256}"'}
        return Response(content=content, media_type=media, headers=headers)
