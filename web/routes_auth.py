"""Sign in, sign out, and the workspace's front door."""
from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from services.users import authenticate
from web.app import PREFIX, home_for, render
from web.auth import CSRF_FIELD, check_csrf, flash, load_user

router = APIRouter()


def _safe_next(raw) -> str | None:
    """Only a path of the workspace itself (no open redirect)."""
    if isinstance(raw, str) and raw.startswith(PREFIX + "/") and not raw.startswith("//") and "\\" not in raw \
            and len(raw) < 500 and not raw.startswith(PREFIX + "/login"):
        return raw
    return None


@router.get("/", include_in_schema=False)
def front_door(request: Request):
    user = load_user(request.app.state.web.uow_factory, request.session.get("user"))
    if user is None:
        return RedirectResponse(PREFIX + "/login", status_code=303)
    return RedirectResponse(home_for(user.role), status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    user = load_user(request.app.state.web.uow_factory, request.session.get("user"))
    if user is not None:
        return RedirectResponse(_safe_next(next) or home_for(user.role), status_code=303)
    return render(request, "login.html", title="Connexion", next=_safe_next(next) or "", error=None, username="")


@router.post("/login")
async def login(request: Request):
    form = await request.form()
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    target = _safe_next(form.get("next"))
    expected = request.session.get("csrf")
    sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        return render(request, "login.html", status=400, title="Connexion", next=target or "", username=username,
                      error="Le formulaire a expiré : saisissez à nouveau votre mot de passe.")
    if not username or not password:
        return render(request, "login.html", status=400, title="Connexion", next=target or "", username=username,
                      error="L'identifiant et le mot de passe sont obligatoires.")
    web = request.app.state.web

    def check():
        with web.uow_factory() as uow:
            user = authenticate(uow=uow, username=username, password=password)
            return None if user is None else (user.username, user.role, user.display_name)

    found = await run_in_threadpool(check)
    if found is None:
        return render(request, "login.html", status=401, title="Connexion", next=target or "", username=username,
                      error="Identifiant ou mot de passe incorrect, ou compte désactivé.")
    # A new session: nothing of the anonymous one is kept, the CSRF token is new.
    request.session.clear()
    request.session["user"] = found[0]
    request.session["csrf"] = secrets.token_urlsafe(32)
    flash(request, "success", f"Bienvenue, {found[2]}.")
    return RedirectResponse(target or home_for(found[1]), status_code=303)


@router.post("/logout")
async def logout(request: Request):
    await check_csrf(request)
    from web.routes_oidc import logout_redirect  # a session opened by the OpenID provider ends there too

    if (to_provider := await logout_redirect(request)) is not None:
        return to_provider
    request.session.clear()
    flash(request, "success", "Vous êtes déconnecté(e).")
    return RedirectResponse(PREFIX + "/login", status_code=303)
