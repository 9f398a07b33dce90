"""Who is using the web workspace: the session, the CSRF token of the forms, and the user behind
them (reloaded on every request, so a disabled account is out at once).

The session is kept by the server (`services.sessions`, table `web_sessions`). The browser's
cookie, signed with a key derived from the service's secret (the one that signs the API's
tokens), HttpOnly, SameSite=Lax, path /ui, eight hours, holds the session's random token, a
random per-session CSRF token and the flash messages of the next page — nothing else. The
cookie alone authenticates nothing: « Se déconnecter » deletes the session's row, a password
change or a disable ends every session of the account."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from services.commands import Actor
from services.sessions import session_user
from services.users import actor_for

SESSION_COOKIE = "usine_session"
SESSION_KEY = "sid"  # the session's token, in the signed cookie
SESSION_MAX_AGE = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
WRITER_BLOCKED_ROLES = ("auditor",)


def session_key(secret: str) -> str:
    """A key for the web cookies only, derived from the service secret (never the secret itself)."""
    return hmac.new(secret.encode("utf-8"), b"usine-web-session-v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebUser:
    username: str
    display_name: str
    role: str
    actor: Actor

    @property
    def regions(self) -> tuple[str, ...]:
        return self.actor.regions or ()

    @property
    def reads_only(self) -> bool:
        return self.role in WRITER_BLOCKED_ROLES


class LoginRequired(Exception):
    """No signed-in user: the page sends the browser to the login form."""


class Forbidden(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CsrfRefused(Exception):
    """A form came without the session's CSRF token."""


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def flash(request: Request, level: str, text: str) -> None:
    messages = list(request.session.get("flash", []))
    # The cookie is small: messages are kept short, and only the last few.
    messages.append({"level": level, "text": text[:600]})
    request.session["flash"] = messages[-4:]


def pop_flashes(request: Request) -> list[dict]:
    return request.session.pop("flash", []) if "flash" in request.session else []


def load_user(web, token: str | None) -> WebUser | None:
    """The user of a live session (`web`: the workspace's state), or None."""
    if not token:
        return None
    row = session_user(web.uow_factory, web.clock, token)
    if row is None:
        return None
    return WebUser(row.username, row.display_name, row.role, actor_for(row))


def request_user(request: Request) -> WebUser | None:
    return load_user(request.app.state.web, request.session.get(SESSION_KEY))


def _user_sync(request: Request) -> WebUser:
    user = request_user(request)
    if user is None:
        if SESSION_KEY in request.session:
            request.session.pop(SESSION_KEY, None)
        raise LoginRequired()
    request.state.user = user
    return user


def current_user(request: Request) -> WebUser:
    """A dependency of every page (sync: FastAPI runs it in its thread pool)."""
    return _user_sync(request)


async def check_csrf(request: Request) -> None:
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise CsrfRefused()


async def writer(request: Request) -> WebUser:
    """A dependency of every POST that changes something: a signed-in user, the form's CSRF
    token, and a role that writes (an auditor consults, it never changes anything)."""
    await check_csrf(request)
    user = await run_in_threadpool(_user_sync, request)
    if user.reads_only:
        raise Forbidden("Un auditeur consulte : il ne modifie rien.")
    return user
