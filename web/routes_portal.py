"""The applicant portal (`/ui/portail`, docs/portal.md): a company starts a candidacy under an open
call, fills the form in steps kept as a draft, uploads each piece the programme asks, submits,
then follows its dossier — state, next step and who has it, what is asked of it (pieces, a claim,
a repayment), its payments and its loan schedule. The letters that ask something link here.

Thin shell: `services.candidacy_drafts` for the form and the submission, `services.commands`
(upload_document) for the pieces, `web.dossier_view.dossier_page` for what the dossier page shows."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import escape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from db import models as m
from rules.calendar import paris_date
from rules.errors import ConcurrencyConflict, NotFound, RuleViolation
from services import candidacy_drafts as drafts
from services import commands, messages
from services.people import display_names
from services.search import in_scope
from services.storage import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from states.lifecycle import LOAN_STATES, ROLE_LABELS, STATE_LABELS
from web.app import PREFIX, render
from web.auth import Forbidden, WebUser, current_user, flash, writer
from web.dossier_view import dossier_page
from web.format import KIND_LABELS, RULE_LABELS
from web.routes_dossier import _safe_name, _sniff, refusal_text

router = APIRouter()
DraftId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Reference = Annotated[str, Path(max_length=32, pattern=r"^[A-Z0-9-]+$")]
StepName = Annotated[str, Path(max_length=40)]
LIVE_FIELDS = ("siren", "employees", "region", "turnover", "balance_sheet", "equity", "expense", "aid_requested",
               "aid_1_amount", "aid_2_amount", "aid_3_amount")


def _company(user: WebUser) -> None:
    if user.role != "applicant":
        raise Forbidden("Le portail est celui des entreprises : votre rôle travaille depuis la file des dossiers.")


def _known_step(step: str, steps: tuple[str, ...]) -> str:
    """A mistyped step's address answers a French page naming the steps there are (404)."""
    if step not in steps:
        listed = ", ".join(f"« {drafts.STEP_TITLES[s]} » (…/etapes/{s})" for s in steps)
        raise HTTPException(404, f"Cette étape de la candidature n'existe pas. Les étapes sont : {listed}.")
    return step


def _error_text(error: drafts.FieldError) -> str:
    rule = RULE_LABELS.get(error.rule, error.rule)
    return f"{error.message.rstrip('. ')} (règle « {rule} »)."


# -- home --------------------------------------------------------------------------------------

@router.get("/portail")
def home(request: Request, user: Annotated[WebUser, Depends(current_user)]):
    _company(user)
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        calls = drafts.open_calls(uow, today)
        mine = drafts.drafts_of(uow, user.actor)
        draft_rows = [{"draft": d, "programme": drafts.programme_of(uow, d), "next": drafts.next_step(d),
                       "dossier": uow.session.get(m.Dossier, d.dossier_id) if d.dossier_id else None} for d in mine]
        # Every dossier of the company, drafts too (one started through the API or by the demo has
        # no portal draft: it is continued from its pieces page).
        dossiers = list(uow.session.scalars(select(m.Dossier).where(
            m.Dossier.company_id.in_(select(m.Company.id).where(m.Company.siren == user.actor.siren)))
            .order_by(m.Dossier.updated_at.desc(), m.Dossier.id.desc()).limit(200)))
        dossiers = [d for d in dossiers if in_scope(user.actor, d, uow.catalogue)]
        asks = {d.id: _asks_count(uow, d) for d in dossiers}
        resume_of = {row["dossier"].id: row["draft"].id for row in draft_rows if row["dossier"] is not None}
        unread = messages.unread_counts(uow.session, user.actor, [d.id for d in dossiers])
        return render(request, "portal_home.html", title="Mon espace entreprise", calls=calls, drafts=draft_rows,
                      dossiers=dossiers, asks=asks, steps=drafts.STEP_TITLES, resume_of=resume_of, unread=unread)


def _asks_count(uow, d: m.Dossier) -> int:
    return len(uow.session.scalars(select(m.DocumentRequest.id).where(
        m.DocumentRequest.dossier_id == d.id, m.DocumentRequest.status == "open")).all())


@router.post("/portail/candidatures")
async def start(request: Request, user: Annotated[WebUser, Depends(writer)]):
    _company(user)
    form = await request.form()
    programme_id = form.get("programme")
    web = request.app.state.web

    def work():
        with web.uow_factory() as uow:
            return drafts.start_draft(uow=uow, clock=web.clock, actor=user.actor,
                                      programme_id=programme_id if isinstance(programme_id, str) else "")
    try:
        draft_id = await run_in_threadpool(work)
    except RuleViolation as exc:
        flash(request, "error", refusal_text(exc))
        return RedirectResponse(f"{PREFIX}/portail", status_code=303)
    return RedirectResponse(f"{PREFIX}/portail/candidatures/{draft_id}", status_code=303)


# -- the form ----------------------------------------------------------------------------------

def _draft_or_404(uow, user: WebUser, draft_id: int):
    try:
        return drafts.get_draft(uow, user.actor, draft_id)
    except NotFound:
        raise HTTPException(404, "Candidature introuvable.") from None


@router.get("/portail/candidatures/{draft_id}")
def resume(request: Request, draft_id: DraftId, user: Annotated[WebUser, Depends(current_user)]):
    """Where the company left its draft: the first step not passed, or the pieces."""
    _company(user)
    web = request.app.state.web
    with web.uow_factory() as uow:
        draft = _draft_or_404(uow, user, draft_id)
        if draft.submitted_at is not None and draft.dossier_id:
            return RedirectResponse(f"{PREFIX}/portail/dossiers/{uow.dossier(draft.dossier_id).reference}", 303)
        return RedirectResponse(f"{PREFIX}/portail/candidatures/{draft_id}/etapes/{drafts.next_step(draft)}", 303)


def _step_page(request: Request, user: WebUser, draft_id: int, step: str, *, values: dict | None = None,
               errors: dict | None = None, status: int = 200):
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        draft = _draft_or_404(uow, user, draft_id)
        programme = drafts.programme_of(uow, draft)
        done = dict(draft.steps or {})
        if values is None:
            values = dict(done.get(step, {}).get("typed", {})) if step in drafts.FORM_STEPS else {}
            if step == "entreprise" and not values:
                company = uow.session.scalar(select(m.Company).where(m.Company.siren == user.actor.siren))
                values = {"siren": user.actor.siren or "", "name": company.name if company else "",
                          "email": (company.email or "") if company else "", "region": programme.region}
        dossier = uow.session.get(m.Dossier, draft.dossier_id) if draft.dossier_id else None
        context = {}
        if step == "de_minimis":
            aids = done.get("de_minimis", {}).get("checked", {}).get("aids", [])
            context["room"] = drafts.de_minimis_room(aids, today)
        if step in ("pieces", "depot"):
            if dossier is None:
                return RedirectResponse(f"{PREFIX}/portail/candidatures/{draft_id}/etapes/{drafts.next_step(draft)}", 303)
            context.update(_pieces_context(uow, dossier))
            context["room"] = drafts.de_minimis_room(done["de_minimis"]["checked"]["aids"], today)
        reachable = [s for s in drafts.ALL_STEPS if s in done or s == drafts.next_step(draft)
                     or (s in ("pieces", "depot") and dossier is not None)]
        return render(request, "portal_candidacy.html", status=status, title=f"Candidature — {drafts.STEP_TITLES[step]}",
                      draft=draft, programme=programme, step=step, steps=drafts.ALL_STEPS,
                      step_titles=drafts.STEP_TITLES, reachable=reachable, values=values, errors=errors or {},
                      error_text=_error_text, labels=drafts.LABELS, activities=drafts.ACTIVITY_LABELS,
                      regions=[(r, r) for r in drafts.REGIONS], lines=drafts.candidacy_lines(programme), dossier=dossier,
                      fixed=dossier is not None, done=done, size_labels=drafts.SIZE_LABELS, live_fields=LIVE_FIELDS,
                      example=programme.is_example, **context)


@router.get("/portail/candidatures/{draft_id}/etapes/{step}")
def step_form(request: Request, draft_id: DraftId, step: StepName, user: Annotated[WebUser, Depends(current_user)]):
    _company(user)
    _known_step(step, drafts.ALL_STEPS)
    return _step_page(request, user, draft_id, step)


@router.post("/portail/candidatures/{draft_id}/etapes/{step}")
async def step_save(request: Request, draft_id: DraftId, step: StepName, user: Annotated[WebUser, Depends(writer)]):
    _company(user)
    _known_step(step, drafts.FORM_STEPS)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    web = request.app.state.web

    def work():
        with web.uow_factory() as uow:
            return drafts.save_step(uow=uow, clock=web.clock, actor=user.actor, draft_id=draft_id, step=step,
                                    values=values)
    try:
        result = await run_in_threadpool(work)
    except drafts.StepRefused as exc:
        errors = exc.errors
        return await run_in_threadpool(lambda: _step_page(request, user, draft_id, step, values=values,
                                                          errors=errors, status=422))
    except RuleViolation as exc:
        field = exc.field if exc.field in drafts.LABELS else "step"
        errors = {field: drafts.FieldError(exc.rule, exc.message)}
        return await run_in_threadpool(lambda: _step_page(request, user, draft_id, step, values=values,
                                                          errors=errors, status=422))
    except NotFound:
        raise HTTPException(404, "Candidature introuvable.") from None
    if result["dossier_id"]:
        flash(request, "success", "Informations enregistrées : votre dossier est créé en brouillon. Déposez maintenant "
                                  "les pièces demandées.")
    else:
        flash(request, "success", f"Étape « {drafts.STEP_TITLES[step]} » enregistrée.")
    return RedirectResponse(f"{PREFIX}/portail/candidatures/{draft_id}/etapes/{result['next']}", status_code=303)


@router.get("/portail/candidatures/{draft_id}/controle")
def live(request: Request, draft_id: DraftId, user: Annotated[WebUser, Depends(current_user)],
         champ: Annotated[str, Query(pattern="^[a-z_0-9]{1,20}$")]):
    """The live check of one field as the company types (htmx): the server's own checks."""
    _company(user)
    if champ not in LIVE_FIELDS:
        raise HTTPException(404, "Champ inconnu.")
    raw = request.query_params.get(champ, "")[:200]
    web = request.app.state.web
    with web.uow_factory() as uow:
        programme = drafts.programme_of(uow, _draft_or_404(uow, user, draft_id))
    error, hint = drafts.live_check(programme, user.actor, champ, raw)
    if error is not None:
        return HTMLResponse(f'<span class="error">{escape(_error_text(error))}</span>')
    return HTMLResponse(f'<span class="muted">{escape(hint)}</span>' if hint and raw.strip() else "")


@router.post("/portail/candidatures/{draft_id}/depot")
async def submit(request: Request, draft_id: DraftId, user: Annotated[WebUser, Depends(writer)]):
    _company(user)
    web = request.app.state.web

    def work():
        with web.uow_factory() as uow:
            return drafts.submit_draft(uow=uow, clock=web.clock, actor=user.actor, draft_id=draft_id)
    try:
        outcome = await run_in_threadpool(work)
    except (RuleViolation, ConcurrencyConflict) as exc:
        flash(request, "error", refusal_text(exc))
        return RedirectResponse(f"{PREFIX}/portail/candidatures/{draft_id}/etapes/depot", status_code=303)
    except NotFound:
        raise HTTPException(404, "Candidature introuvable.") from None
    flash(request, "success", f"Candidature déposée : dossier {outcome.reference}, état « "
                              f"{STATE_LABELS[outcome.state]} ». Un accusé de réception vous est envoyé.")
    return RedirectResponse(f"{PREFIX}/portail/dossiers/{outcome.reference}", status_code=303)


# -- the dossier, its pieces -------------------------------------------------------------------

def _dossier_or_404(uow, user: WebUser, reference: str) -> m.Dossier:
    d = uow.session.scalar(select(m.Dossier).where(m.Dossier.reference == reference))
    if d is None or not in_scope(user.actor, d, uow.catalogue):
        raise HTTPException(404, "Dossier introuvable.")
    return d


def _pieces_context(uow, d: m.Dossier) -> dict:
    """What the company is asked to upload: the open requests' pieces, and the candidacy's
    missing ones while the dossier is a draft; with the pieces already there."""
    programme = uow.catalogue.get(d.programme_id, d.programme_version)
    requests = list(uow.session.scalars(select(m.DocumentRequest).where(
        m.DocumentRequest.dossier_id == d.id, m.DocumentRequest.status == "open").order_by(m.DocumentRequest.id)))
    docs = list(uow.session.scalars(select(m.Document).where(m.Document.dossier_id == d.id)
                                    .order_by(m.Document.kind, m.Document.version)))
    latest = {doc.kind: doc for doc in docs}
    asked: list[str] = []
    if d.status == "draft":
        asked.extend(programme.documents.candidacy)
    for r in requests:
        asked.extend(k for k in r.kinds if k not in asked)
    rows = []
    for kind in asked:
        doc = latest.get(kind)
        since = [r.requested_at for r in requests if kind in r.kinds]
        answered = doc is not None and doc.review_status != "refused" and (not since or doc.uploaded_at >= min(since))
        rows.append({"kind": kind, "label": KIND_LABELS.get(kind, kind), "latest": doc, "answered": answered})
    return {"requests": requests, "piece_rows": rows, "missing": [r["kind"] for r in rows if not r["answered"]]}


def _holder(d: m.Dossier, page: dict, people: dict) -> tuple[str, str | None]:
    """Who has the dossier now: (the role's French name, the person's display name when known)."""
    state = d.status
    pending_claim = bool(page["pending_claims"])
    if state in ("draft",) or page["open_requests"] or (state == "action_plan" and "2" not in (d.quotes or {})):
        return ROLE_LABELS["applicant"], None
    if state in ("submitted", "eligibility_review", "instruction", "action_plan"):
        return ROLE_LABELS["officer"], people.get(d.officer) if d.officer else None
    if state == "diagnostic":
        return ROLE_LABELS["consultant"], d.consultant
    if state == "ready_for_vote":
        return ROLE_LABELS["head"], None
    if state in ("approved", "in_payment"):
        return (ROLE_LABELS["finance"], None) if pending_claim else (ROLE_LABELS["applicant"], None)
    if state in LOAN_STATES:
        return ROLE_LABELS["applicant"], None
    # A closed, rejected, withdrawn or lapsed dossier waits for no one: not « Usine (automatique) »,
    # which would read as if something were still to happen.
    return NOBODY_HOLDS, None


NOBODY_HOLDS = "personne — le dossier est terminé"


@router.get("/portail/dossiers/{reference}")
def follow(request: Request, reference: Reference, user: Annotated[WebUser, Depends(current_user)]):
    _company(user)
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        d = _dossier_or_404(uow, user, reference)
        page = dossier_page(uow, user, d.id, today)
        people = page["people"]
        people.update(display_names(uow.session, [d.officer]))
        role, person = _holder(d, page, people)
        draft = drafts.draft_of_dossier(uow, d.id)
        pieces = _pieces_context(uow, d)
        unread = messages.unread_counts(uow.session, user.actor, [d.id]).get(d.id, 0)
        return render(request, "portal_dossier.html", title=f"Mon dossier {d.reference}", holder_role=role,
                      holder_person=person, draft=draft, today=today, unread=unread, **pieces,
                      **{k: v for k, v in page.items() if k != "requests"})


@router.get("/portail/dossiers/{reference}/pieces")
def pieces(request: Request, reference: Reference, user: Annotated[WebUser, Depends(current_user)]):
    _company(user)
    return _pieces_page(request, user, reference)


def _pieces_page(request: Request, user: WebUser, reference: str, *, error: str | None = None,
                 error_kind: str | None = None, status: int = 200):
    web = request.app.state.web
    with web.uow_factory() as uow:
        d = _dossier_or_404(uow, user, reference)
        programme = uow.catalogue.get(d.programme_id, d.programme_version)
        return render(request, "portal_pieces.html", status=status, title=f"Pièces du dossier {d.reference}", d=d,
                      programme=programme, draft=drafts.draft_of_dossier(uow, d.id), error=error,
                      error_kind=error_kind, **_pieces_context(uow, d))


@router.post("/portail/dossiers/{reference}/pieces")
async def upload(request: Request, reference: Reference, user: Annotated[WebUser, Depends(writer)]):
    """One piece → `services.commands.upload_document` (type read from the content, 20 Mo)."""
    _company(user)
    form = await request.form()
    kind = form.get("kind") if isinstance(form.get("kind"), str) else None
    file = form.get("file")
    back = form.get("back")
    web = request.app.state.web

    async def refuse(message: str):
        """The page again (422), the refusal beside the piece's field; nothing written."""
        draft_id = await run_in_threadpool(_draft_id_of, web, user, reference) if back == "candidature" else None
        if draft_id is not None:
            return await run_in_threadpool(lambda: _step_page(
                request, user, draft_id, "pieces", errors={kind or "file": drafts.FieldError("upload", message)},
                status=422))
        return await run_in_threadpool(lambda: _pieces_page(request, user, reference, error=message,
                                                            error_kind=kind, status=422))
    label = KIND_LABELS.get(kind or "", kind or "pièce")
    if not isinstance(file, UploadFile) or not file.filename:
        return await refuse(f"Refusé — aucun fichier choisi (champ « {label} »). Rien n'a été modifié.")
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        return await refuse(f"Refusé — fichier trop volumineux : {MAX_UPLOAD_MB} Mo au plus "
                      f"(champ « {label} », règle « {RULE_LABELS['file_too_large']} »).")
    if not content:
        return await refuse(f"Refusé — le fichier est vide (champ « {label} »). Rien n'a été modifié.")
    try:
        content_type = _sniff(content)
        if content_type is None:
            return await refuse(f"Refusé — type de fichier non accepté (champ « {label} », règle « {RULE_LABELS['file_type']} ») : "
                          "PDF, PNG, JPEG, ODT ou DOCX, reconnu d'après son contenu. Rien n'a été modifié.")
        filename = _safe_name(file.filename, content_type, kind or "piece")
    except RuleViolation as exc:
        return await refuse(refusal_text(exc))

    def work():
        with web.uow_factory() as uow:
            d = _dossier_or_404(uow, user, reference)
            return commands.upload_document(uow=uow, clock=web.clock, actor=user.actor, dossier_id=d.id, kind=kind,
                                            filename=filename, content=content, content_type=content_type)
    try:
        outcome = await run_in_threadpool(work)
    except (RuleViolation, ConcurrencyConflict) as exc:
        return await refuse(refusal_text(exc))
    text = f"Pièce « {label} » déposée : {filename}."
    if outcome.details.get("duplicate_of"):
        text += " Attention : ce fichier est identique à une pièce déjà déposée ; vérifiez votre choix."
    flash(request, "success", text)
    if back == "candidature":
        return RedirectResponse(_back_to_draft(web, user, reference), status_code=303)
    return RedirectResponse(f"{PREFIX}/portail/dossiers/{reference}/pieces", status_code=303)


def _draft_id_of(web, user: WebUser, reference: str) -> int | None:
    with web.uow_factory() as uow:
        d = _dossier_or_404(uow, user, reference)
        draft = drafts.draft_of_dossier(uow, d.id)
        return None if draft is None or draft.submitted_at is not None else draft.id


def _back_to_draft(web, user: WebUser, reference: str) -> str:
    draft_id = _draft_id_of(web, user, reference)
    if draft_id is None:
        return f"{PREFIX}/portail/dossiers/{reference}/pieces"
    return f"{PREFIX}/portail/candidatures/{draft_id}/etapes/pieces#pieces"
