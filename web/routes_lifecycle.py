"""The state chart: the lifecycle of `states.lifecycle`, as a picture and as a table."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from web.app import render
from web.auth import WebUser, current_user
from web.statechart import state_chart_svg, transitions_table

router = APIRouter()


@router.get("/cycle-de-vie")
def lifecycle(request: Request, user: Annotated[WebUser, Depends(current_user)]):
    return render(request, "lifecycle.html", title="Cycle de vie d'un dossier", chart=state_chart_svg(),
                  rows=transitions_table())
