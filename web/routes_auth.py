"""Sign in, sign out (this session, or everywhere), the password change, and the workspace's
front door. Sign-in abuse and revocation: docs/security.md."""
from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from rules.errors import RuleViolation
from services.sessions import end_session, start_session
from services.signin import Refusal
from services.users import account_version, change_password, end_all_sessions
from web.app import PREFIX, home_for, render
from web.auth import CSRF_FIELD, SESSION_KEY, WebUser, check_csrf, current_user, flash, request_user

router = APIRouter()


def _safe_next(raw) -> str | None:
    """Only a path of the workspace itself (no open redirect)."""
    if isinstance(raw, str) and raw.startswith(PREFIX + "/") and not raw.startswith("//") and "\\" not in raw \
            and len(raw) < 500 and not raw.startswith(PREFIX + "/login"):
        return raw
    return None


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def open_session(request: Request, username: str, token_version: int | None = None) -> None:
    """A new session (kept by the server, at `token_version`, default the account's current
    one): nothing of the previous one is kept, the CSRF token is new."""
    web = request.app.state.web
    if token_version is None:
        token_version = account_version(web.uow_factory, username)
    token = start_session(web.uow_factory, web.clock, username=username, token_version=token_version)
    request.session.clear()
    request.session[SESSION_KEY] = token
    request.session["csrf"] = secrets.token_urlsafe(32)


@router.get("/", include_in_schema=False)
def front_door(request: Request):
    user = request_user(request)
    if user is None:
        return RedirectResponse(PREFIX + "/login", status_code=303)
    return RedirectResponse(home_for(user.role), status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    user = request_user(request)
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
    result = await request.app.state.web.signin.attempt(username, password, _address(request))
    if isinstance(result, Refusal):
        response = render(request, "login.html", status=401 if result.reason == "invalid" else 429, title="Connexion",
                          next=target or "", username=username, error=result.message)
        if result.retry_after:
            response.headers["Retry-After"] = str(result.retry_after)
        return response
    await run_in_threadpool(open_session, request, result.username, result.token_version)
    flash(request, "success", f"Bienvenue, {result.display_name}.")
    return RedirectResponse(target or home_for(result.role), status_code=303)


@router.post("/logout")
async def logout(request: Request):
    await check_csrf(request)
    await run_in_threadpool(end_session, request.app.state.web.uow_factory, request.session.get(SESSION_KEY))
    from web.routes_oidc import logout_redirect  # a session opened by the OpenID provider ends there too

    if (to_provider := await logout_redirect(request)) is not None:
        return to_provider
    request.session.clear()
    flash(request, "success", "Vous êtes déconnecté(e).")
    return RedirectResponse(PREFIX + "/login", status_code=303)


@router.post("/deconnexion-partout")
async def logout_everywhere(request: Request):
    """Every session and API token of the account ends, this one included."""
    await check_csrf(request)
    user = await run_in_threadpool(current_user, request)
    await run_in_threadpool(lambda: end_all_sessions(uow_factory=request.app.state.web.uow_factory,
                                                     username=user.username))
    request.session.clear()
    flash(request, "success", "Toutes vos sessions et vos jetons d'accès sont fermés : reconnectez-vous.")
    return RedirectResponse(PREFIX + "/login", status_code=303)


@router.get("/mot-de-passe")
def password_form(request: Request, user: WebUser = Depends(current_user)):
    return render(request, "password.html", title="Changer mon mot de passe", error=None)


@router.post("/mot-de-passe")
async def password_change(request: Request):
    await check_csrf(request)
    user = await run_in_threadpool(current_user, request)
    web = request.app.state.web
    form = await request.form()
    current = str(form.get("current_password") or "")
    new = str(form.get("new_password") or "")
    confirm = str(form.get("confirm_password") or "")

    def again(status: int, error: str, retry_after: int | None = None):
        response = render(request, "password.html", status=status, title="Changer mon mot de passe", error=error)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response

    if not current or not new:
        return again(400, "Le mot de passe actuel et le nouveau sont obligatoires.")
    if new != confirm:
        return again(400, "Les deux saisies du nouveau mot de passe diffèrent : recommencez.")
    checked = await web.signin.attempt(user.username, current, _address(request))
    if isinstance(checked, Refusal):
        if checked.reason == "invalid":
            return again(400, "Le mot de passe actuel est incorrect : rien n'a été changé.")
        return again(429, checked.message, checked.retry_after)
    try:
        view = await run_in_threadpool(lambda: change_password(uow_factory=web.uow_factory, clock=web.clock,
                                                               username=user.username, password=new))
    except RuleViolation as exc:
        return again(400, exc.message.replace("password :", "Nouveau mot de passe :", 1))
    # This browser stays signed in, on a new session; every other one, and every API token, ends.
    await run_in_threadpool(open_session, request, view["username"])
    flash(request, "success", "Mot de passe changé. Vos autres sessions et vos jetons d'accès sont fermés.")
    return RedirectResponse(home_for(user.role), status_code=303)
