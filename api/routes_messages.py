"""The dossier's messages and the agents' annotations, over `services.messages` (docs/messages.md):
the company and the consultant read and write their own exchange, the agents both, an auditor
reads; annotations are the agents' (and the auditor's, to read) only."""
from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_clock, get_uow_factory, require_roles, scoped_dossier
from api.idempotency import execute
from api.problems import problem_responses
from api.routes_commands import HEADERS
from services import messages
from services.commands import Actor
from services.storage import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB

router = APIRouter(tags=["messagerie"])
DossierId = Annotated[int, Path(ge=1, le=2**31 - 1)]
READERS = ("applicant", "consultant", "officer", "head", "finance", "admin", "auditor")
WRITERS = ("applicant", "consultant", *messages.REGION_WRITER_ROLES)


def _view(x: dict) -> dict:
    return {"id": x["id"], "thread": x["thread"], "author": x["author"], "author_role": x["author_role"],
            "from": x["from"], "body": x["body"], "sent_at": x["sent_at"].isoformat(),
            "read_at": x["read_at"].isoformat() if x["read_at"] else None, "unread": x["unread"],
            "attachments": [{k: a[k] for k in ("id", "filename", "size", "sha256", "content_type")}
                            for a in x["attachments"]]}


@router.get("/dossiers/{dossier_id}/messages", responses=problem_responses(401, 403, 404, 422),
            summary="Les messages du dossier que l'utilisateur peut lire (son échange, ou les deux pour un agent)")
def list_messages(dossier_id: DossierId, actor: Annotated[Actor, Depends(require_roles(*READERS))],
                  uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        dossier = scoped_dossier(dossier_id, actor, uow)
        return [_view(x) for x in messages.messages_of(uow.session, actor, dossier.id)]


@router.post("/dossiers/{dossier_id}/messages", status_code=201, responses=problem_responses(401, 403, 404, 409, 413, 422),
             summary=f"Écrire un message (pièces jointes : PDF, PNG, JPEG, ODT, DOCX ; {MAX_UPLOAD_MB} Mo au plus chacune)",
             openapi_extra={"parameters": HEADERS[1:]})
def post_message(request: Request, dossier_id: DossierId, actor: Annotated[Actor, Depends(require_roles(*WRITERS))],
                 body: Annotated[str, Form(description="Le texte du message", max_length=5000)],
                 thread: Annotated[str | None, Form(description="applicant ou consultant (agents)")] = None,
                 attachments: Annotated[list[UploadFile] | None, File(description="Pièces jointes")] = None,
                 uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Avec un en-tête `Idempotency-Key`, un message renvoyé (réseau coupé, double clic) n'est
    écrit et notifié qu'une fois."""
    files = [messages.Attachment(f.filename or "piece-jointe", f.file.read(MAX_UPLOAD_BYTES + 1))
             for f in attachments or []]

    def work(uow):
        dossier = scoped_dossier(dossier_id, actor, uow)
        return 201, messages.send_message(uow=uow, clock=clock, actor=actor, dossier_id=dossier.id, body=body,
                                          thread=thread, attachments=files), {}

    # What the key's request was: the text, the exchange, each attachment by name and content.
    payload = {"body": body, "thread": thread,
               "attachments": [[f.filename, hashlib.sha256(f.content).hexdigest()] for f in files]}
    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload=payload, work=work,
                   dossier_id=dossier_id)


class AnnotationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    body: str = Field(min_length=1, max_length=5000, description="Le texte de l'annotation")


@router.get("/dossiers/{dossier_id}/annotations", responses=problem_responses(401, 403, 404, 422),
            summary="Les annotations internes des agents (jamais visibles de l'entreprise ni du prestataire)")
def list_annotations(dossier_id: DossierId,
                     actor: Annotated[Actor, Depends(require_roles(*messages.REGION_WRITER_ROLES, "auditor"))],
                     uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        dossier = scoped_dossier(dossier_id, actor, uow)
        return [{"id": n.id, "author": n.author, "author_role": n.author_role, "body": n.body,
                 "written_at": n.written_at.isoformat()} for n in messages.annotations_of(uow.session, actor, dossier.id)]


@router.post("/dossiers/{dossier_id}/annotations", status_code=201, responses=problem_responses(401, 403, 404, 422),
             summary="Annoter le dossier (agents)", openapi_extra={"parameters": HEADERS[1:]})
def post_annotation(request: Request, dossier_id: DossierId, payload: AnnotationIn,
                    actor: Annotated[Actor, Depends(require_roles(*messages.REGION_WRITER_ROLES))],
                    uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    def work(uow):
        dossier = scoped_dossier(dossier_id, actor, uow)
        return 201, messages.annotate(uow=uow, clock=clock, actor=actor, dossier_id=dossier.id, body=payload.body), {}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload=payload.model_dump(),
                   work=work, dossier_id=dossier_id)
