"""The web workspace of Usine: server-rendered French pages (Jinja2, a little htmx) for officers,
heads of service, finance, auditors — and the applicants and consultants who hand in documents.

`mount_web(app, uow_factory=…, clock=…)` adds it to the API application: the pages under `/ui/`,
their static files under `/ui/static/`, and `/` sends the browser to `/ui/`. Each page is a thin
shell: it builds the user's `Actor` and calls `services.commands`, `services.queries`,
`services.search` and `services.audit` — scope and rules are theirs.

`create_standalone_app()` serves the workspace alone (tests, or without the API)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import StrictUndefined
from starlette.datastructures import URL, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from programmes import EXAMPLE_NOTICE
from services.body_limit import BodyLimitMiddleware, html_refusal
from services.storage import MAX_UPLOAD_MB
from web import accessibility
from web import format as fmt
from web.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    CsrfRefused,
    Forbidden,
    LoginRequired,
    csrf_token,
    flash,
    pop_flashes,
    session_key,
)

PREFIX = "/ui"
HERE = Path(__file__).parent
log = logging.getLogger("usine.web")



def _routers() -> tuple:
    """The workspace's route modules, in the order their routes are tried. Imported when the app
    is built, not with this module: each of them imports `render` and `PREFIX` from here."""
    from web import (
        routes_accessibility,
        routes_assign,
        routes_audit,
        routes_auth,
        routes_company,
        routes_council,
        routes_dashboard,
        routes_dossier,
        routes_letters,
        routes_lifecycle,
        routes_messages,
        routes_oidc,
        routes_payments,
        routes_portal,
        routes_queue,
        routes_teams,
    )
    return (routes_auth, routes_queue, routes_dossier, routes_council, routes_payments, routes_audit,
            routes_dashboard, routes_lifecycle, routes_oidc, routes_company, routes_portal, routes_assign,
            routes_letters, routes_messages, routes_accessibility, routes_teams)


SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.undefined = StrictUndefined  # a missing variable is a bug, never an empty string
    env.trim_blocks = True
    env.lstrip_blocks = True
    fmt.install(env)
    env.globals["PREFIX"] = PREFIX
    env.globals["EXAMPLE_NOTICE"] = EXAMPLE_NOTICE  # « Programme d'exemple — chiffres non officiels », one wording
    env.globals["MAX_UPLOAD_MB"] = MAX_UPLOAD_MB  # the forms' « 20 Mo au plus », from the one limit
    from web.messages_view import unread_for_page

    env.globals["messages_unread"] = unread_for_page  # the queue's unread badges (partials/messages_*)
    env.globals["ACCESSIBILITY_MENTION"] = accessibility.footer_mention()  # every page's footer (RGAA)
    return templates


NAV = (
    # (path, label, roles that see it)
    ("/portail", "Mon espace", ("applicant",)),
    ("/dossiers", "Dossiers", None),
    ("/seances", "Séances", ("officer", "head", "finance", "auditor")),
    ("/paiements", "Paiements", ("officer", "finance", "auditor")),
    ("/audit", "Audit", ("auditor",)),
    ("/equipes", "Équipes", ("head", "admin")),
    ("/tableau-de-bord", "Tableau de bord", ("officer", "head", "finance", "auditor", "admin")),
    ("/cycle-de-vie", "Cycle de vie", None),
)


def home_for(role: str) -> str:
    return PREFIX + {"applicant": "/portail", "head": "/seances", "finance": "/paiements", "auditor": "/audit",
                     "admin": "/tableau-de-bord"}.get(role, "/dossiers")


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """A page: the template with the user, the CSRF token, the flash messages, the service date."""
    web = request.app.state.web
    user = getattr(request.state, "user", None)
    nav = [] if user is None else [
        {"href": PREFIX + path, "label": label_, "current": request.url.path.startswith(PREFIX + path)}
        for path, label_, roles in NAV if roles is None or user.role in roles]
    base = {
        "request": request, "user": user, "nav": nav, "csrf": csrf_token(request),
        "flashes": pop_flashes(request), "now": web.clock.now(), "demo_clock": web.demo_clock,
        "title": context.pop("title", "Usine"),
    }
    return web.templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    try:
        return render(request, "error.html", status=status, title=title, status_code=status, message=message)
    except Exception:  # pragma: no cover - the error page itself failed: plain text, still French
        log.exception("error page failed")
        return HTMLResponse(f"<!doctype html><html lang=fr><title>{title}</title><h1>{title}</h1><p>{message}</p>",
                            status_code=status)


def _install_handlers(web_app: FastAPI) -> None:
    @web_app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = PREFIX + "/"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/login"})
        from urllib.parse import quote
        return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)

    @web_app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused):
        flash(request, "error", "Le formulaire a expiré (jeton de sécurité absent ou périmé) : rien n'a été fait, "
                                "recommencez.")
        back = request.headers.get("referer") or ""
        target = back if _same_site_ui(request, back) else PREFIX + "/"
        return RedirectResponse(target, status_code=303)

    @web_app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return _error_page(request, 403, "Action non permise", exc.message)

    @web_app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return _error_page(request, 404, "Page introuvable",
                               exc.detail if isinstance(exc.detail, str) and exc.detail != "Not Found"
                               else "Cette page n'existe pas, ou elle ne relève pas de votre périmètre.")
        if exc.status_code == 405:
            return _error_page(request, 405, "Méthode non permise", "Cette adresse ne s'utilise pas ainsi.")
        return _error_page(request, exc.status_code, "Erreur", str(exc.detail))

    @web_app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        fields = ", ".join(str(e["loc"][-1]) for e in exc.errors()[:5])
        return _error_page(request, 400, "Requête invalide", f"Champ(s) invalide(s) : {fields}.")

    @web_app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("web page failed: %s %s", request.method, request.url.path)
        return _error_page(request, 500, "Erreur du serveur",
                           "Une erreur inattendue s'est produite ; elle a été journalisée. Rien n'a été enregistré "
                           "si l'action n'est pas confirmée sur la page du dossier.")


def _same_site_ui(request: Request, url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.netloc == request.url.netloc and parts.path.startswith(PREFIX + "/")


class SecurityHeadersMiddleware:
    """Pure ASGI: adds SECURITY_HEADERS (and `no-store` outside the static files) to every answer.

    Not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware wraps an exception raised while
    the body is read — the body limit's refusal of a streamed body — so the catch-all answered 500
    instead of the limit's 413 page."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = URL(scope=scope).path.startswith(PREFIX + "/static/")

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


def _demo_clock(clock) -> bool:
    from services.clock import SystemClock

    return not isinstance(clock, SystemClock)


def build_web_app(*, uow_factory, clock, secret_key: str, secure_cookie: bool | None = None,
                  signin=None, signin_policy=None) -> FastAPI:
    """The workspace as an ASGI application of its own, to be mounted at `/ui`. `signin`: the
    API's `services.signin.SigninGate` when mounted in it (one bound on password checks for the
    process), else one of its own."""
    if signin is None:
        from services.signin import SigninGate

        signin = SigninGate(uow_factory, clock, signin_policy)
    web_app = FastAPI(title="Usine — espace de travail", docs_url=None, redoc_url=None, openapi_url=None)
    web_app.state.web = SimpleNamespace(uow_factory=uow_factory, clock=clock, templates=make_templates(),
                                        demo_clock=_demo_clock(clock), signin=signin)
    from services.messages import link_key

    web_app.state.web.expert_key = link_key(secret_key)  # signs the expert links (services.messages)
    if secure_cookie is None:
        secure_cookie = os.environ.get("USINE_WEB_SECURE_COOKIE", "").lower() in ("1", "true", "yes")
    web_app.add_middleware(SessionMiddleware, secret_key=session_key(secret_key), session_cookie=SESSION_COOKIE,
                           max_age=SESSION_MAX_AGE, path=PREFIX, same_site="lax", https_only=secure_cookie)

    web_app.add_middleware(SecurityHeadersMiddleware)

    from web.routes_oidc import configure_oidc

    configure_oidc(web_app)  # USINE_OIDC_*: the agents' OpenID provider, if any (docs/oidc.md)
    _install_handlers(web_app)
    web_app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in _routers():
        web_app.include_router(module.router)
    return web_app


def _secret_for(app: FastAPI, secret_key: str | None) -> str:
    if secret_key:
        return secret_key
    existing = getattr(app.state, "secret_key", None)
    if existing:
        return existing
    from services.secrets import resolve_secret

    return resolve_secret(None)


def mount_web(app: FastAPI, *, uow_factory, clock, secret_key: str | None = None, signin=None,
              signin_policy=None) -> None:
    """Add the workspace to `app`: pages under /ui/, static files under /ui/static, / → /ui/."""
    web_app = build_web_app(uow_factory=uow_factory, clock=clock, secret_key=_secret_for(app, secret_key),
                            signin=signin, signin_policy=signin_policy)
    app.mount(PREFIX, web_app, name="ui")

    async def to_workspace():
        return RedirectResponse(PREFIX + "/", status_code=307)

    app.add_api_route("/", to_workspace, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, to_workspace, methods=["GET"], include_in_schema=False)


def create_standalone_app(*, uow_factory=None, clock=None, secret_key: str | None = None,
                          signin_policy=None) -> FastAPI:
    """The workspace without the API (the same pages, the same services)."""
    if uow_factory is None or clock is None:
        from services import runtime

        uow_factory = uow_factory or runtime.default_uow_factory()
        clock = clock or runtime.default_clock()
    app = FastAPI(title="Usine — espace de travail", docs_url=None, redoc_url=None, openapi_url=None)
    # Mounted in the API app, the workspace is under the API's body limit; built alone, under the
    # same limits with its own answer, the French page.
    app.add_middleware(BodyLimitMiddleware, refuse=html_refusal)
    mount_web(app, uow_factory=uow_factory, clock=clock, secret_key=secret_key, signin_policy=signin_policy)
    return app
