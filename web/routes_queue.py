"""The work queue (file de travail)."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request

from rules.calendar import paris_date
from rules.errors import InvalidInput
from services.dashboard import REFRESH_MINUTES
from states.lifecycle import STATE_LABELS, STATES
from web.app import render
from web.assign_view import queue_bar
from web.auth import WebUser, current_user
from web.queue import ASSIGNED_VIEWS, counts_by_state, programmes_in_scope, queue_filters, work_queue

router = APIRouter()


@router.get("/dossiers")
def queue(request: Request, user: Annotated[WebUser, Depends(current_user)]):
    """The queue under the filters of its query string, read by `web.queue.queue_filters` — the
    same reading as its exports' (`/ui/exports/dossiers.*`)."""
    web = request.app.state.web
    today = paris_date(web.clock.now())
    filters, errors = queue_filters(request.query_params)
    with web.uow_factory() as uow:
        try:
            result = work_queue(uow, user.actor, filters, today)
        except InvalidInput:
            errors.append("Lien de page périmé ou illisible : retour à la première page.")
            filters = replace(filters, cursor=None, page=1)
            result = work_queue(uow, user.actor, filters, today)
        # The counts by state on the first page only: the pages after it are read by their
        # cursor, and their chips would be the same grouped count read again.
        counts = counts_by_state(uow, user.actor, web.clock) if result["page"] == 1 else None
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
                  refresh_minutes=REFRESH_MINUTES,
                  programmes=programmes, states=[(s, STATE_LABELS[s]) for s in STATES], errors=errors,
                  today=today, pages=pages, calls=calls, lines=lines, people=people,
                  bulk=bulk, assigned_views=list(ASSIGNED_VIEWS.items()),
                  first_page="?" + urlencode(params), example_rows=any(r["example"] for r in result["items"]))
