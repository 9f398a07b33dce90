"""Letters and documents (docs/letters.md): a dossier's accusé de réception, decision and
convention — previewed as a page, downloaded as PDF —, a council session's agenda and list of
deliberations as PDF, and the queue and a session's agenda as CSV, XLSX or ODS. Thin shells over
`services.letters`, `services.council_documents`, `services.table_exports`."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response, StreamingResponse

from programmes import EXAMPLE_NOTICE
from rules import french
from rules.calendar import paris_date
from services import letters as letters_service
from services.council_documents import AGENDA_COLUMNS, agenda_pdf, agenda_rows, agenda_table, deliberations_pdf
from services.table_exports import MEDIA_TYPES, Column, export_file
from web.app import render
from web.auth import WebUser, current_user
from web.dossier_view import dossier_or_404
from web.routes_council import SessionCode, _readers, _scoped_session, session_view
from web.routes_dossier import DossierId

router = APIRouter()
Slug = Annotated[str, Path(pattern="^(accuse-de-reception|decision|convention)$")]
Fmt = Annotated[str, Path(pattern="^(csv|xlsx|ods)$")]
# Who may read a letter before it is sent (a preview, a draft decision): the service's staff.
PREVIEW_ROLES = ("officer", "head", "finance", "auditor", "admin")


def _attachment(name: str) -> dict:
    return {"content-disposition": f'attachment; filename="{name}"', "x-content-type-options": "nosniff"}


def _letter(request: Request, user: WebUser, dossier_id: int, slug: str):
    web = request.app.state.web
    with web.uow_factory() as uow:
        d = dossier_or_404(uow, user.actor, dossier_id)
        try:
            letter = letters_service.dossier_letter(uow, d, slug, web.clock)
        except letters_service.ConventionNotRequired:
            raise
        except letters_service.LetterUnavailable as exc:
            raise HTTPException(404, exc.message) from None
        if letter.source == "built" and user.role not in PREVIEW_ROLES:
            raise HTTPException(404, "Ce courrier n'a pas encore été envoyé.")
        return d.id, d.reference, letter


def _not_required(request: Request, exc: letters_service.ConventionNotRequired):
    """A subsidy at or below the threshold has no convention: said so (409), not « Page introuvable »."""
    return render(request, "error.html", status=409, title="Convention non requise", status_code=409,
                  message=exc.message)


@router.get("/dossiers/{dossier_id}/lettres/{slug}.pdf")
def letter_pdf(request: Request, dossier_id: DossierId, slug: Slug, user: Annotated[WebUser, Depends(current_user)]):
    """The letter as PDF: the text of the e-mail sent (or, before it is, of its preview)."""
    try:
        _, _, letter = _letter(request, user, dossier_id, slug)
    except letters_service.ConventionNotRequired as exc:
        return _not_required(request, exc)
    return Response(letters_service.render_letter_pdf(letter), media_type="application/pdf",
                    headers=_attachment(letter.filename))


@router.get("/dossiers/{dossier_id}/lettres/{slug}")
def letter_page(request: Request, dossier_id: DossierId, slug: Slug, user: Annotated[WebUser, Depends(current_user)]):
    """The letter previewed as a page, with its « Télécharger (PDF) » link."""
    try:
        did, reference, letter = _letter(request, user, dossier_id, slug)
    except letters_service.ConventionNotRequired as exc:
        return _not_required(request, exc)
    return render(request, "letter_preview.html", title=f"{letter.title} — {reference}", did=did,
                  reference=reference, letter=letter, slug=slug,
                  paragraphs=[block for block in letter.text.split("\n\n") if block.strip()])


def _session(request: Request, user: WebUser, code: str):
    _readers(user)
    web = request.app.state.web
    with web.uow_factory() as uow:
        row = _scoped_session(uow, code, user)
        s = session_view(row, uow.catalogue)
        rows = agenda_rows(uow, s, user.actor)
        example = uow.catalogue.latest(row.programme_id).status == "example"
    return s, rows, example


@router.get("/seances/{code}/ordre-du-jour.pdf")
def session_agenda_pdf(request: Request, code: SessionCode, user: Annotated[WebUser, Depends(current_user)]):
    s, rows, example = _session(request, user, code)
    return Response(agenda_pdf(s, rows, example=example), media_type="application/pdf",
                    headers=_attachment(f"ordre-du-jour-{s.code}.pdf"))


@router.get("/seances/{code}/deliberations.pdf")
def session_deliberations_pdf(request: Request, code: SessionCode, user: Annotated[WebUser, Depends(current_user)]):
    s, rows, example = _session(request, user, code)
    return Response(deliberations_pdf(s, rows, example=example), media_type="application/pdf",
                    headers=_attachment(f"deliberations-{s.code}.pdf"))


@router.get("/seances/{code}/ordre-du-jour.{fmt}")
def session_agenda_export(request: Request, code: SessionCode, fmt: Fmt,
                          user: Annotated[WebUser, Depends(current_user)]):
    s, rows, example = _session(request, user, code)
    title = f"Ordre du jour de la séance {s.code} du {french.day(s.session_date)} — {s.programme_name}"
    if example:
        title = f"{EXAMPLE_NOTICE} — {title}"
    content = b"".join(export_file(fmt, AGENDA_COLUMNS, agenda_table(rows), title=title, sheet="Ordre du jour"))
    return Response(content, media_type=MEDIA_TYPES[fmt], headers=_attachment(f"ordre-du-jour-{s.code}.{fmt}"))


@router.get("/exports/dossiers.{fmt}")
def queue_export(request: Request, fmt: Fmt, user: Annotated[WebUser, Depends(current_user)]):
    """The queue with the screen's filters and order, every row, streamed in keyset batches."""
    from web.queue import queue_filters
    from web.queue_export import COLUMNS, queue_rows

    web = request.app.state.web
    today = paris_date(web.clock.now())
    filters, _ignored = queue_filters(request.query_params)
    name = f"dossiers-{today:%Y-%m-%d}.{fmt}"
    columns: tuple[Column, ...] = COLUMNS

    def produce():
        with web.uow_factory() as uow:
            yield from export_file(fmt, columns, queue_rows(uow, user.actor, filters), sheet="Dossiers")

    return StreamingResponse(produce(), media_type=MEDIA_TYPES[fmt], headers=_attachment(name))
