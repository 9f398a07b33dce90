"""Work sharing (issue 19, part 4): assigning one dossier from its page, and the bulk actions of
the queue's selection — thin shells over `services.assignment` and `services.bulk_actions`."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from rules.errors import RuleViolation
from services.assignment import assign_officer
from services.bulk_actions import ACTIONS, run_bulk
from web.app import PREFIX, render
from web.assign_view import ASSIGNING_ROLES
from web.auth import Forbidden, WebUser, flash, writer
from web.format import plain_message
from web.routes_dossier import DossierId, _refused_form, _text, _typed, _version, refusal_text, run_command

router = APIRouter()


def _assigners(user: WebUser) -> None:
    if user.role not in ASSIGNING_ROLES:
        raise Forbidden("Seuls les chargé(e)s de mission et les chef(fe)s de service affectent les dossiers.")


@router.post("/dossiers/{dossier_id}/affectation")
async def assign(request: Request, dossier_id: DossierId, user: Annotated[WebUser, Depends(writer)]):
    """Take the dossier, hand it over, or (the head) route it: one `assign_officer`."""
    _assigners(user)
    form = await request.form()
    web = request.app.state.web
    officer = user.actor.name if _text(form, "action") == "take" else (_text(form, "officer") or "")
    out, refused = await run_in_threadpool(run_command, web, user, dossier_id, assign_officer,
                                           {"officer": officer, "note": _text(form, "note")}, _version(form))
    if refused is not None:
        return await run_in_threadpool(_refused_form, request, user, dossier_id, refused, _typed(form), "assign")
    flash(request, "success", f"Dossier affecté à {out.details['officer_name']}.")
    return RedirectResponse(f"{PREFIX}/dossiers/{dossier_id}#affectation", status_code=303)


def _selection(values: list) -> tuple[list[int], dict[int, int]]:
    """The checked dossiers (`id.version`, as the queue showed them): ids, and the versions seen."""
    ids, versions = [], {}
    for raw in values:
        if not isinstance(raw, str):
            continue
        head, _, version = raw.partition(".")
        if head.isdigit() and len(head) < 10:
            ids.append(int(head))
            if version.isdigit() and len(version) < 10:
                versions[int(head)] = int(version)
    return ids, versions


@router.post("/dossiers/selection")
async def bulk(request: Request, user: Annotated[WebUser, Depends(writer)]):
    """One command per checked dossier, each its own unit of work; one French line per dossier."""
    _assigners(user)
    form = await request.form()
    web = request.app.state.web
    action = _text(form, "action") or ""
    ids, versions = _selection(form.getlist("dossier"))

    def work():
        return run_bulk(web.uow_factory, web.clock, user.actor, action=action, dossier_ids=ids,
                        officer=_text(form, "officer"), note=_text(form, "note"),
                        kinds=[k for k in form.getlist("kinds") if isinstance(k, str)],
                        session=_text(form, "session"), versions=versions)
    try:
        results = await run_in_threadpool(work)
    except RuleViolation as exc:  # the action's parameters or the selection: nothing was done
        flash(request, "error", refusal_text(exc))
        back = request.headers.get("referer") or ""
        return RedirectResponse(back if back.startswith(str(request.base_url)) else f"{PREFIX}/dossiers",
                                status_code=303)
    for r in results:
        if not r.ok and r.message and r.reference:
            r.line = f"{r.reference} — refusé : {plain_message(r.message, None)}"
    done = sum(1 for r in results if r.ok)
    return render(request, "assign_results.html", title="Action sur la sélection", results=results,
                  action_label=ACTIONS.get(action, action), done=done, refused=len(results) - done)
