"""The programme dashboard (tableau de bord)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.dashboard import REFRESH_MINUTES, figures_of
from web.app import render
from web.auth import WebUser, current_user
from web.dashboard import programme_figures, programmes_for, reported_figures

router = APIRouter()


@router.get("/tableau-de-bord")
def dashboard(request: Request, user: Annotated[WebUser, Depends(current_user)]):
    web = request.app.state.web
    with web.uow_factory() as uow:
        programmes = programmes_for(user.actor, uow.catalogue)
        stored = figures_of(uow, programmes, web.clock)
        figures = [programme_figures(f, p) for f, p in zip(stored, programmes)]
        # Programmes of the scope with no dossier yet are named, not charted.
        empty = [f["programme"] for f in figures if f["total"] == 0]
        figures = [f for f in figures if f["total"] > 0]
        reported = reported_figures(uow.catalogue)
    computed_at = min((f["computed_at"] for f in figures), default=None)
    return render(request, "dashboard.html", title="Tableau de bord", figures=figures, empty=empty, reported=reported,
                  computed_at=computed_at, refresh_minutes=REFRESH_MINUTES)
