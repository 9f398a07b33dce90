"""The work queue (file de travail)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from rules.calendar import paris_date
from rules.errors import InvalidInput
from states.lifecycle import STATE_LABELS, STATES
from web.app import render
from web.assign_view import queue_bar
from web.auth import WebUser, current_user
from web.queue import ASSIGNED_VIEWS, QueueFilters, counts_by_state, programmes_in_scope, work_queue

router = APIRouter()


def _date_or_none(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@router.get("/dossiers")
def queue(request: Request, user: Annotated[WebUser, Depends(current_user)],
          state: Annotated[str | None, Query(max_length=32)] = None,
          programme: Annotated[str | None, Query(max_length=64)] = None,
          q: Annotated[str | None, Query(max_length=100)] = None,
          mine: Annotated[str | None, Query(max_length=5)] = None,
          due_before: Annotated[str | None, Query(max_length=10)] = None,
          closed: Annotated[str | None, Query(max_length=5)] = None,
          call: Annotated[str | None, Query(max_length=32)] = None,
          line: Annotated[str | None, Query(max_length=3)] = None,
          page: Annotated[int, Query(ge=1, le=100000)] = 1,
          cursor: Annotated[str | None, Query(max_length=400)] = None,
          assigned: Annotated[str | None, Query(max_length=8)] = None):
    web = request.app.state.web
    today = paris_date(web.clock.now())
    errors = []
    if state and state not in STATES:
        errors.append(f"État inconnu « {state} » : filtre ignoré.")
        state = None
    due = _date_or_none(due_before)
    if due_before and due is None:
        errors.append(f"Échéance « {due_before} » : date AAAA-MM-JJ attendue, filtre ignoré.")
    if assigned and assigned not in ASSIGNED_VIEWS:
        errors.append(f"Affectation « {assigned} » inconnue : filtre ignoré.")
        assigned = None
    line_number = int(line) if line and line.isdigit() else None
    if line and line_number is None:
        errors.append(f"Ligne « {line} » : un numéro de ligne est attendu, filtre ignoré.")
    filters = QueueFilters(call=(call or "").strip() or None, line=line_number, state=state or None, programme=programme or None, q=(q or "").strip() or None,
                           mine=bool(mine), due_before=due, open_only=not closed, page=page,
                           cursor=cursor or None, assigned=assigned or None)
    with web.uow_factory() as uow:
        try:
            result = work_queue(uow, user.actor, filters, today)
        except InvalidInput:
            errors.append("Lien de page périmé ou illisible : retour à la première page.")
            filters = replace(filters, cursor=None, page=1)
            result = work_queue(uow, user.actor, filters, today)
        # The counts by state on the first page only: the pages after it are read by their
        # cursor, and their chips would be the same grouped count read again.
        counts = counts_by_state(uow, user.actor) if result["page"] == 1 else None
        programmes = programmes_in_scope(user.actor, uow.catalogue)
        from services.people import display_names

        people = display_names(uow.session, [row.get("officer") for row in result.get("items", [])])
        bulk = queue_bar(uow, user, programmes, today)  # work sharing: the selection's action bar
    calls = [(w.code, w.label or w.code) for p in programmes for w in p.windows if w.code]
    lines = sorted({(ln.number, ln.name) for p in programmes if len(p.dossier_lines) > 1 for ln in p.dossier_lines})
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "cursor") and v}
    pages = {}
    if result["page"] > 1:
        previous = result["page"] - 1
        pages["prev"] = "?" + urlencode({**params, **({"page": previous, "cursor": result["prev_cursor"]}
                                                       if previous > 1 and result["prev_cursor"] else {})})
    if result["next_cursor"]:
        pages["next"] = "?" + urlencode({**params, "page": result["page"] + 1, "cursor": result["next_cursor"]})
    return render(request, "queue.html", title="Dossiers", result=result, counts=counts, filters=filters,
                  programmes=programmes, states=[(s, STATE_LABELS[s]) for s in STATES], errors=errors,
                  today=today, pages=pages, calls=calls, lines=lines, people=people,
                  bulk=bulk, assigned_views=list(ASSIGNED_VIEWS.items()),
                  first_page="?" + urlencode(params), example_rows=any(r["example"] for r in result["items"]))
