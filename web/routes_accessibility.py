"""« Déclaration d'accessibilité » (RGAA 4.1 model), reachable without signing in."""
from __future__ import annotations

from fastapi import APIRouter, Request

from services.config import get_settings
from web import accessibility as a11y
from web.app import render
from web.auth import request_user

router = APIRouter()


@router.get("/accessibilite")
def statement(request: Request):
    request.state.user = request_user(request)  # the header as signed in, when the visitor is
    return render(request, "accessibility.html", title="Déclaration d'accessibilité", a11y=a11y,
                  contact=a11y.contact_link(get_settings().accessibility_contact))
