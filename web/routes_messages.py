"""The dossier's messages, the agents' annotations and the expert opinions in the workspace: thin
shells over `services.messages` (docs/web.md, « Messagerie »). A refused message comes back
beside its form (422), keeping what was typed; nothing is written."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from rules.errors import NotFound, RuleViolation
from services import messages
from services.storage import MAX_UPLOAD_BYTES
from web.app import PREFIX, render
from web.auth import WebUser, check_csrf, current_user, flash, writer
from web.dossier_view import dossier_or_404
from web.routes_dossier import _refused_form, _text, _typed, refusal_text

router = APIRouter()
DossierId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Token = Annotated[str, Path(min_length=10, max_length=300)]


def _run(web, user: WebUser, dossier_id: int, fn, **kwargs):
    """One use case in its own unit of work for a dossier of the user's scope: (result, None) or
    (None, the refusal in French)."""
    try:
        with web.uow_factory() as uow:
            dossier_or_404(uow, user.actor, dossier_id)
            return fn(uow=uow, clock=web.clock, actor=user.actor, dossier_id=dossier_id, **kwargs), None
    except RuleViolation as exc:
        return None, refusal_text(exc)
    except NotFound:
        raise HTTPException(404, "Dossier introuvable.") from None


@router.post("/dossiers/{dossier_id}/messages")
async def send(request: Request, dossier_id: DossierId, user: Annotated[WebUser, Depends(writer)]):
    form = await request.form()
    thread = _text(form, "thread") or ("applicant" if user.role not in ("applicant", "consultant") else user.role)
    attachments = []
    for upload in form.getlist("attachments"):
        if isinstance(upload, UploadFile) and upload.filename:
            # One byte more than the limit is enough to know it is over (the service says so).
            attachments.append(messages.Attachment(upload.filename, await upload.read(MAX_UPLOAD_BYTES + 1)))
    web = request.app.state.web
    out, refused = await run_in_threadpool(_run, web, user, dossier_id, messages.send_message,
                                           body=form.get("body") if isinstance(form.get("body"), str) else None,
                                           thread=thread if user.role not in ("applicant", "consultant") else None,
                                           attachments=attachments)
    if refused:
        return _refused_form(request, user, dossier_id, refused, _typed(form), f"message-{thread}")
    n = len(out["attachments"])
    flash(request, "success", "Message envoyé" + (f" avec {n} pièce(s) jointe(s)" if n else "")
          + (" ; un avis par courriel est parti." if out["notified"] else "."))
    return RedirectResponse(f"{PREFIX}/dossiers/{dossier_id}#messagerie", status_code=303)


@router.get("/dossiers/{dossier_id}/messages/pieces/{attachment_id}")
def attachment(request: Request, dossier_id: DossierId, attachment_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
               user: Annotated[WebUser, Depends(current_user)]):
    from services.files import content_disposition

    web = request.app.state.web
    with web.uow_factory() as uow:
        dossier_or_404(uow, user.actor, dossier_id)
        found = messages.attachment_for(uow.session, user.actor, dossier_id, attachment_id)
        if found is None:
            raise HTTPException(404, "Pièce jointe introuvable.")
        a = found[0]
        if a.content_deleted_at is not None:
            raise HTTPException(404, "Le fichier de cette pièce jointe a été supprimé (durée de conservation échue).")
        content = uow.storage.get(a.storage_key)
        return Response(content, media_type=a.content_type,
                        headers={"content-disposition": content_disposition(a.filename),
                                 "x-content-type-options": "nosniff"})


@router.post("/dossiers/{dossier_id}/annotations")
async def annotate(request: Request, dossier_id: DossierId, user: Annotated[WebUser, Depends(writer)]):
    form = await request.form()
    web = request.app.state.web
    _, refused = await run_in_threadpool(_run, web, user, dossier_id, messages.annotate,
                                         body=form.get("body") if isinstance(form.get("body"), str) else None)
    if refused:
        return _refused_form(request, user, dossier_id, refused, _typed(form), "annotation")
    flash(request, "success", "Annotation enregistrée (visible des seuls agents).")
    return RedirectResponse(f"{PREFIX}/dossiers/{dossier_id}#annotations", status_code=303)


@router.post("/dossiers/{dossier_id}/experts")
async def invite(request: Request, dossier_id: DossierId, user: Annotated[WebUser, Depends(writer)]):
    form = await request.form()
    web = request.app.state.web
    base = f"{request.url.scheme}://{request.url.netloc}{PREFIX}/avis"
    out, refused = await run_in_threadpool(_run, web, user, dossier_id, messages.invite_expert,
                                           name=_text(form, "expert_name"), email=_text(form, "expert_email"),
                                           kind=_text(form, "expert_kind") or "outside", key=web.expert_key,
                                           link_base=base)
    if refused:
        return _refused_form(request, user, dossier_id, refused, _typed(form), "expert")
    from web.format import instant

    flash(request, "success", f"Demande d'avis envoyée par courriel ; le lien expire le {instant(out['expires_at'])}.")
    return RedirectResponse(f"{PREFIX}/dossiers/{dossier_id}#avis", status_code=303)


def _expert_page(request: Request, token: str, *, error: str | None = None, typed: dict | None = None,
                 status: int = 200, done: bool = False):
    web = request.app.state.web
    try:
        with web.uow_factory() as uow:
            summary = None if done else messages.expert_summary(uow=uow, clock=web.clock, key=web.expert_key,
                                                                 token=token)
            return render(request, "partials/messages_expert_page.html", status=status,
                          title="Avis d'expert" + (f" — dossier {summary['reference']}" if summary else ""),
                          summary=summary, token=token, error=error, refused=None, typed=typed or {}, done=done,
                          opinions=messages.OPINIONS)
    except messages.LinkRefused as exc:
        status = {"link_expired": 410, "link_used": 410}.get(exc.rule, 403)
        return render(request, "partials/messages_expert_page.html", status=status, title="Lien d'avis refusé",
                      summary=None, token=token, error=None, refused=exc.message, typed={}, done=False,
                      opinions=messages.OPINIONS)


@router.get("/avis/{token}")
def expert_page(request: Request, token: Token):
    """No account: the signed link is the key (it expires and serves once)."""
    return _expert_page(request, token)


@router.post("/avis/{token}")
async def expert_opinion(request: Request, token: Token):
    await check_csrf(request)
    form = await request.form()
    web = request.app.state.web

    def work():
        with web.uow_factory() as uow:
            return messages.give_opinion(uow=uow, clock=web.clock, key=web.expert_key, token=token,
                                         opinion=_text(form, "opinion"),
                                         text=form.get("text") if isinstance(form.get("text"), str) else None)
    try:
        await run_in_threadpool(work)
    except messages.LinkRefused:
        return _expert_page(request, token)
    except RuleViolation as exc:
        return _expert_page(request, token, error=refusal_text(exc), typed=_typed(form), status=422)
    return _expert_page(request, token, done=True)
