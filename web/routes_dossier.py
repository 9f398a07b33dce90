"""The dossier page and its forms: every action the user's role may take now, each one call of
`services.commands` in its own unit of work, then back to the page (post/redirect/get) with the
result — or the rule that refused, which changed nothing."""
from __future__ import annotations

from typing import Annotated, Callable

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from db import models as m
from rules.calendar import paris_date
from rules.documents import check_piece_visible
from rules.errors import ConcurrencyConflict, NotFound, RuleViolation
from services import commands, loans
from services.storage import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from states.lifecycle import STATE_LABELS
from web.app import PREFIX, render
from web.auth import Forbidden, WebUser, current_user, flash, writer
from web.dossier_view import OutOfScope, dossier_or_404, dossier_page
from web.format import KIND_LABELS, RULE_LABELS, eur, field_label, plain_message
from web.messages_view import mark_seen

router = APIRouter()
DossierId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/dossiers/{dossier_id}")
def dossier(request: Request, dossier_id: DossierId, user: Annotated[WebUser, Depends(current_user)]):
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        try:
            page = dossier_page(uow, user, dossier_id, today)
        except OutOfScope:
            raise HTTPException(404, "Dossier introuvable.") from None
        response = render(request, "dossier.html", title=f"Dossier {page['d'].reference}", today=today,
                          form_error=None, form_values={}, form_action=None, **page)
    # Shown (their « nouveau » marks with them): the messages sent to the user's side are read.
    if page["msg"]["unread"]:
        mark_seen(web, user, dossier_id)
    return response


def _refused_form(request: Request, user: WebUser, dossier_id: int, error: str, values: dict,
                  action: str | None = None):
    """The dossier page again, the refusal beside the form and the form keeping what was typed."""
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        page = dossier_page(uow, user, dossier_id, today)
        return render(request, "dossier.html", title=f"Dossier {page['d'].reference}", today=today,
                      form_error=error, form_values=values, form_action=action, status=422, **page)


def _typed(form: FormData) -> dict:
    """What the person typed in a form, to fill it again (never the CSRF token or the version)."""
    out: dict = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in ("csrf_token", "version"):
            if key in out:
                out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
            else:
                out[key] = value
    return out


# -- reading the forms --------------------------------------------------------------------------

def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    value = value.strip()
    return value or None


def _int(form: FormData, name: str):
    """An integer when the field holds one; otherwise the raw text, for the service to refuse
    with the field's name."""
    raw = _text(form, name)
    if raw is not None and raw.lstrip("-").isdigit() and len(raw) < 10:
        return int(raw)
    return raw


def _amount(form: FormData, name: str):
    raw = _text(form, name)
    if raw is None:
        return None
    return raw.replace("\u202f", "").replace("\u00a0", "").replace(" ", "").replace("€", "").replace(",", ".")


def _version(form: FormData) -> int | None:
    raw = _text(form, "version")
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 10 else None


def _invoices(form: FormData) -> list[dict]:
    lines = []
    for i in range(1, 11):
        date_, days, rate = _text(form, f"invoice_{i}_date"), _int(form, f"invoice_{i}_days"), _amount(form, f"invoice_{i}_rate")
        if date_ is None and days is None and rate is None:
            continue
        line = {"date": date_, "days": days, "day_rate": rate}
        lines.append({k: v for k, v in line.items() if v is not None})
    return lines


def _vote_outcome(form: FormData) -> tuple[Callable, dict]:
    return commands.record_vote, {"session": _text(form, "session"), "outcome": _text(form, "outcome"),
                                  "deliberation": _text(form, "deliberation")}


ACTIONS: dict[str, Callable[[FormData], tuple[Callable, dict]]] = {
    "submit_candidacy": lambda f: (commands.submit_candidacy, {}),
    "take_for_review": lambda f: (commands.take_for_review, {}),
    "request_documents": lambda f: (commands.request_documents, {"kinds": [k for k in f.getlist("kinds") if isinstance(k, str)]}),
    "declare_eligible": lambda f: (commands.declare_eligible, {
        "consultant": _text(f, "consultant"), "phase1": {"days": _int(f, "days"), "day_rate": _amount(f, "day_rate")}}),
    "declare_ineligible": lambda f: (commands.declare_ineligible, {"reason": _text(f, "reason")}),
    "accept_diagnostic": lambda f: (commands.accept_diagnostic, {}),
    "submit_action_plan": lambda f: (commands.submit_action_plan, {
        "phase2": {"days": _int(f, "days"), "day_rate": _amount(f, "day_rate")}}),
    "propose_for_vote": lambda f: (commands.propose_for_vote, {"session": _text(f, "session")}),
    "vote": _vote_outcome,
    "claim_payment": lambda f: (commands.claim_payment, {
        "phase": _int(f, "phase"), "kind": _text(f, "kind"),
        **({"amount": _amount(f, "amount")} if _text(f, "kind") == "advance" else {"invoices": _invoices(f)})}),
    "pay": lambda f: (commands.pay, {"claim_id": _int(f, "claim_id")}),
    "withdraw": lambda f: (commands.withdraw, {"reason": _text(f, "reason")}),
    "disburse_loan": lambda f: (loans.disburse_loan, {}),
    "record_repayment": lambda f: (loans.record_repayment, {"amount": _amount(f, "amount"),
                                                            "received_on": _text(f, "received_on")}),
    "write_off": lambda f: (loans.write_off, {"reason": _text(f, "reason")}),
}

SUCCESS = {
    "submit_candidacy": "Candidature déposée.", "take_for_review": "Dossier pris en instruction.",
    "request_documents": "Demande de pièces envoyée à l'entreprise.", "declare_eligible": "Dossier déclaré éligible.",
    "declare_ineligible": "Dossier déclaré irrecevable.", "accept_diagnostic": "Diagnostic accepté.",
    "submit_action_plan": "Plan d'action déposé.", "propose_for_vote": "Dossier proposé au vote.",
    "vote": "Vote enregistré.", "claim_payment": "Demande de paiement enregistrée.", "pay": "Paiement émis.",
    "withdraw": "Abandon enregistré.", "review_document": "Examen de la pièce enregistré.",
    "upload": "Pièce déposée.", "disburse_loan": "Prêt versé ; l'échéancier est envoyé à l'entreprise.",
    "record_repayment": "Remboursement enregistré.", "write_off": "Prêt passé en perte ; dossier clôturé.",
}


def refusal_text(exc: Exception) -> str:
    if isinstance(exc, RuleViolation):
        # Plain French: the rule by its label, the field as the form names it, never an id.
        rule = RULE_LABELS.get(exc.rule)
        label = field_label(exc.field)
        where = f" (champ « {label} »)" if label else ""
        head = f"Refusé — règle « {rule} »{where}" if rule else f"Refusé{where}"
        return f"{head} : {plain_message(exc.message, exc.field)} Rien n'a été modifié."
    if isinstance(exc, ConcurrencyConflict):
        return f"Refusé — {exc} Rien n'a été modifié."
    return f"Refusé — {exc}"


def run_command(web, user: WebUser, dossier_id: int, fn: Callable, kwargs: dict, expected_version: int | None):
    """One command in its own unit of work, for a dossier in the user's scope (404 otherwise).
    Returns (outcome, None) or (None, the refusal's text)."""
    try:
        with web.uow_factory() as uow:
            dossier_or_404(uow, user.actor, dossier_id)
            outcome = fn(uow=uow, clock=web.clock, actor=user.actor, dossier_id=dossier_id,
                         expected_version=expected_version, **kwargs)
        return outcome, None
    except (RuleViolation, ConcurrencyConflict) as exc:
        return None, refusal_text(exc)
    except NotFound:
        raise HTTPException(404, "Dossier introuvable.") from None


def _success_text(action: str, outcome) -> str:
    text = SUCCESS.get(action, "Action enregistrée.")
    if outcome is not None:
        text += f" État du dossier : {STATE_LABELS.get(outcome.state, outcome.state)}."
        paid = (outcome.details or {}).get("paid")
        if action == "pay" and paid is not None:
            text += f" Montant versé : {eur(paid)}."
            if outcome.details.get("recovery"):
                text += f" Ordre de reversement : {eur(outcome.details['recovery'])}."
        for a in outcome.adjustments:
            text += f" Montant réduit par la règle « {RULE_LABELS.get(a['rule'], a['rule'])} » : {eur(a['amount'])}."
    return text


@router.post("/dossiers/{dossier_id}/actions/{action}")
async def act(request: Request, dossier_id: DossierId, action: Annotated[str, Path(max_length=40)],
              user: Annotated[WebUser, Depends(writer)]):
    if action not in ACTIONS:
        raise HTTPException(404, "Action inconnue.")
    form = await request.form()
    fn, kwargs = ACTIONS[action](form)
    web = request.app.state.web
    outcome, refused = await run_in_threadpool(run_command, web, user, dossier_id, fn, kwargs, _version(form))
    claim_id = _int(form, "claim_id")
    from_claim = _text(form, "back") == "claim" and isinstance(claim_id, int)
    if refused and not from_claim:
        # The page again (422), the refusal beside the form that was sent and the form keeping
        # what was typed — not a redirect whose message sits at the top, off screen.
        return _refused_form(request, user, dossier_id, refused, _typed(form), action)
    if refused:
        flash(request, "error", refused)
    else:
        flash(request, "success", _success_text(action, outcome))
    target = f"{PREFIX}/paiements/{claim_id}" if from_claim else f"{PREFIX}/dossiers/{dossier_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/dossiers/{dossier_id}/documents/{document_id}/review")
async def review(request: Request, dossier_id: DossierId, document_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                 user: Annotated[WebUser, Depends(writer)]):
    form = await request.form()
    kwargs = {"document_id": document_id, "decision": _text(form, "decision"), "reason": _text(form, "reason")}
    web = request.app.state.web
    outcome, refused = await run_in_threadpool(run_command, web, user, dossier_id, commands.review_document, kwargs,
                                               _version(form))
    if refused:
        return _refused_form(request, user, dossier_id, refused, _typed(form), "review")
    flash(request, "success", _review_text(web, document_id, kwargs) + f" État du dossier : "
                              f"{STATE_LABELS.get(outcome.state, outcome.state)}.")
    return RedirectResponse(f"{PREFIX}/dossiers/{dossier_id}#pieces", status_code=303)


def _review_text(web, document_id: int, kwargs: dict) -> str:
    """What was decided, said back: « Pièce « RIB » (v1, rib.pdf) acceptée. »"""
    from web.format import KIND_LABELS

    with web.uow_factory() as uow:
        doc = uow.session.get(m.Document, document_id)
        piece = f"« {KIND_LABELS.get(doc.kind, doc.kind)} » (v{doc.version}, {doc.filename})"
    if kwargs["decision"] == "accepted":
        return f"Pièce {piece} acceptée."
    return f"Pièce {piece} refusée — motif : {kwargs['reason']}. L'entreprise doit en déposer une nouvelle version."


def _sniff(content: bytes) -> str | None:
    try:
        from services.files import sniff
    except ImportError:  # pragma: no cover - the API room is not installed
        return "application/pdf" if content.startswith(b"%PDF-") else None
    return sniff(content)


def _safe_name(raw: str | None, content_type: str, fallback: str) -> str:
    try:
        from services.files import safe_filename
    except ImportError:  # pragma: no cover
        return fallback + ".pdf"
    return safe_filename(raw, content_type, fallback)


@router.post("/dossiers/{dossier_id}/documents")
async def upload(request: Request, dossier_id: DossierId, user: Annotated[WebUser, Depends(writer)]):
    """A real file (multipart) → `services.commands.upload_document`. The type is read from the
    content (PDF, PNG, JPEG, ODT, DOCX), never from the name."""
    form = await request.form()
    kind = _text(form, "kind")
    file = form.get("file")
    target = f"{PREFIX}/dossiers/{dossier_id}#pieces"

    def refuse(message: str):
        return _refused_form(request, user, dossier_id, message, {"kind": kind or ""}, "upload")
    if not isinstance(file, UploadFile) or not file.filename:
        return refuse("Refusé — aucun fichier choisi (champ « fichier »). Rien n'a été modifié.")
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        return refuse(f"Refusé — fichier trop volumineux : {MAX_UPLOAD_MB} Mo au plus (champ « fichier »).")
    if not content:
        return refuse("Refusé — le fichier est vide (champ « fichier »). Rien n'a été modifié.")
    try:
        content_type = _sniff(content)
    except RuleViolation as exc:  # an office document that is not one, a zip bomb, macros
        return refuse(refusal_text(exc))
    if content_type is None:
        return refuse("Refusé — type de fichier non accepté (champ « fichier ») : PDF, PNG, JPEG, ODT ou DOCX, "
                                "reconnu d'après son contenu. Rien n'a été modifié.")
    try:
        filename = _safe_name(file.filename, content_type, kind or "piece")
    except RuleViolation as exc:
        return refuse(refusal_text(exc))
    kwargs = {"kind": kind, "filename": filename, "content": content, "content_type": content_type}
    web = request.app.state.web
    outcome, refused = await run_in_threadpool(run_command, web, user, dossier_id, commands.upload_document, kwargs,
                                               _version(form))
    if refused:
        return refuse(refused)
    flash(request, "success", f"Pièce déposée : {kwargs['filename']} (empreinte SHA-256 "
                              f"{outcome.details['sha256'][:16]}…, version {outcome.details['version']}).")
    same = outcome.details.get("duplicate_of")
    if same:
        from web.format import KIND_LABELS, instant

        flash(request, "warning", f"Attention : ce fichier est identique (même empreinte SHA-256) à la pièce "
                                  f"« {KIND_LABELS.get(same['kind'], same['kind'])} » v{same['version']} "
                                  f"({same['filename']}) déjà déposée le {instant(same['uploaded_at'])}. "
                                  "Vérifiez que vous avez choisi le bon fichier.")
    return RedirectResponse(target, status_code=303)


@router.get("/dossiers/{dossier_id}/documents/{document_id}/fichier")
def download(request: Request, dossier_id: DossierId, document_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
             user: Annotated[WebUser, Depends(current_user)]):
    web = request.app.state.web
    with web.uow_factory() as uow:
        dossier_or_404(uow, user.actor, dossier_id)
        doc = uow.session.get(m.Document, document_id)
        if doc is None or doc.dossier_id != dossier_id:
            raise HTTPException(404, "Pièce introuvable.")
        try:
            check_piece_visible(user.role, doc.kind, KIND_LABELS.get(doc.kind, doc.kind))
        except RuleViolation as exc:  # consultant_need_to_know: the file is not served
            raise Forbidden(f"{exc.message} (règle {exc.rule})") from None
        try:
            content = uow.storage.get(doc.storage_key)
        except (KeyError, FileNotFoundError):
            raise HTTPException(404, "Le contenu de cette pièce n'est pas disponible dans ce stockage.") from None
        try:
            from services.files import content_disposition
            disposition = content_disposition(doc.filename)
        except ImportError:  # pragma: no cover
            disposition = "attachment"
        return Response(content, media_type=doc.content_type,
                        headers={"content-disposition": disposition, "x-content-type-options": "nosniff"})


@router.get("/dossiers/{dossier_id}/echeancier.{fmt}")
def schedule_download(request: Request, dossier_id: DossierId, fmt: Annotated[str, Path(pattern="^(csv|pdf)$")],
                      user: Annotated[WebUser, Depends(current_user)]):
    """The loan's schedule as a CSV (spreadsheet cells neutralised) or PDF file."""
    from services.loan_exports import schedule_csv, schedule_pdf

    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        d = dossier_or_404(uow, user.actor, dossier_id)
        if d.loan is None:
            raise HTTPException(404, "Ce dossier n'a pas de prêt versé, donc pas d'échéancier.")
        if fmt == "csv":
            content, media = schedule_csv(uow.session, d, today), "text/csv; charset=utf-8"
        else:
            content, media = schedule_pdf(uow.session, d, today), "application/pdf"
        name = f"echeancier-{d.reference}.{fmt}"
    return Response(content, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"',
                                                        "x-content-type-options": "nosniff"})
