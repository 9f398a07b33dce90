"""The REST API of Usine (FastAPI): `create_app()` builds it; `usine api` serves it with uvicorn
(`uvicorn --factory api.app:create_app`)."""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import (
    routes_assign,
    routes_audit,
    routes_auth,
    routes_commands,
    routes_companies,
    routes_council,
    routes_documents,
    routes_dossiers,
    routes_health,
    routes_messages,
    routes_opendata,
    routes_pathways,
    routes_payments,
    routes_programmes,
    routes_users,
)
from api.files import BodyLimitMiddleware
from api.observability import ObservabilityMiddleware
from api.problems import PROBLEM_JSON, TITLES, FieldError, ProblemDetails, install_problem_handlers
from api.security import DEFAULT_TTL_SECONDS, resolve_secret
from services.metrics import DatabaseCollector

VERSION = "0.1.0"
DESCRIPTION = """Dossiers d'aide « Industrie du Futur » des régions.

**Authentification** : `POST /auth/token` (OAuth2, flux « password ») donne un jeton signé qui
expire ; chaque requête le porte dans `Authorization: Bearer …`. Chaque compte a un rôle
(applicant, consultant, officer, head, finance, auditor, admin) et un périmètre : les
programmes de ses régions (officer, head, finance, auditor), son entreprise (applicant), les
dossiers qui lui sont confiés (consultant). Un dossier hors périmètre répond 404, qu'il existe
ou non. Un auditeur ne modifie rien (403 sur toute méthode autre que GET).

**Erreurs** : `application/problem+json` (RFC 9457) avec `rule` (l'identifiant de la règle) et
`field` (le champ en cause).

**Concurrence** : `GET /dossiers/{id}` donne la version en `ETag` ; `If-Match` sur une commande la
rend conditionnelle (409 et `current_version` si le dossier a changé). **Idempotence** :
`Idempotency-Key` sur tout POST ; la même requête rejouée avec la même clé ne s'applique qu'une
fois et reçoit la même réponse (en-tête `Idempotent-Replayed: true`), même après un arrêt brutal
du service : la réponse est enregistrée dans la transaction de la commande. Une réponse 503 veut
dire que rien n'a été enregistré, sauf celle de règle `outcome_unknown` (requête sans clé dont
l'issue n'a pu être relue : relisez le dossier avant de la renvoyer).

**Types stricts** : un booléen est `true` ou `false`, un entier un nombre JSON entier, une date le
texte `AAAA-MM-JJ`, un montant un texte (« 1100.00 ») ; sinon 422 `invalid_input` nommant le champ.
"""

# The commands come first: the router tries the routes in this order at every request, and the
# commands are most of the traffic (no path of the other routers matches theirs).
ROUTERS = (routes_commands, routes_health, routes_auth, routes_programmes, routes_companies, routes_dossiers,
           routes_documents, routes_payments, routes_council, routes_users, routes_opendata, routes_pathways,
           routes_assign, routes_messages, routes_audit)


def _token_ttl() -> int:
    raw = os.environ.get("USINE_TOKEN_TTL_SECONDS")
    if raw is None:
        return DEFAULT_TTL_SECONDS
    value = int(raw)
    if not 60 <= value <= 86400:
        raise ValueError("USINE_TOKEN_TTL_SECONDS : entre 60 et 86400 secondes.")
    return value


class SerializedFactory:
    """On SQLite one transaction writes at a time, and every Usine transaction is a writer (the
    engine begins them with BEGIN IMMEDIATE). Left to SQLite, concurrent requests of one process
    wait in its busy handler, which sleeps up to 100 ms between attempts: hundreds of ms of tail
    latency for nothing. Within one API process they queue on this lock instead, in order. (Across
    processes SQLite's handler still applies: serve SQLite with one worker.)"""

    def __init__(self, factory):
        self._factory = factory
        self.lock = threading.RLock()
        self.engine = getattr(factory, "engine", None)

    def __call__(self):
        return _LockedUnitOfWork(self._factory(), self.lock)


class _LockedUnitOfWork:
    def __init__(self, uow, lock):
        self._uow, self._lock = uow, lock

    def __enter__(self):
        self._lock.acquire()
        try:
            return self._uow.__enter__()
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc):
        try:
            return self._uow.__exit__(*exc)
        finally:
            self._lock.release()

    def __getattr__(self, name):  # catalogue, storage… without entering
        return getattr(self._uow, name)


def _serialized_if_sqlite(uow_factory):
    engine = getattr(uow_factory, "engine", None)
    if engine is not None and engine.dialect.name == "sqlite" and not isinstance(uow_factory, SerializedFactory):
        return SerializedFactory(uow_factory)
    return uow_factory


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    anchoring = getattr(app.state, "anchoring", None)
    if anchoring is None:
        yield
        return
    async with anchoring.running():
        yield


def create_app(*, uow_factory=None, clock=None, secret_key: str | None = None,
               token_ttl_seconds: int | None = None, anchor_every: float | None = None,
               signin_policy=None) -> FastAPI:
    """The API on the given unit-of-work factory and clock (defaults: the configured service,
    `services.runtime`), signing tokens with `secret_key` (default: USINE_SECRET_KEY, else the
    generated `var/secret_key`). While it runs it anchors the histories every `anchor_every`
    seconds and at shutdown (`api.anchoring`); by default, USINE_API_ANCHOR_SECONDS (900) when it
    serves the configured database, off when it is given a unit-of-work factory (tests); 0: off.
    Sign-in limits from `signin_policy` (default: the settings, `services.signin.SigninPolicy`)."""
    serving_configured = uow_factory is None
    if uow_factory is None or clock is None:
        from services import runtime

        uow_factory = uow_factory or runtime.default_uow_factory()
        clock = clock or runtime.default_clock()
    if anchor_every is None and serving_configured:
        from api.anchoring import interval_from_environment

        anchor_every = interval_from_environment()
    app = FastAPI(title="Usine — API", version=VERSION, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  lifespan=_lifespan,
                  openapi_tags=[{"name": n} for n in ("authentification", "programmes", "entreprises", "dossiers",
                                                      "commandes", "pièces", "paiements", "séances",
                                                      "utilisateurs", "santé")])
    app.state.uow_factory = _serialized_if_sqlite(uow_factory)
    app.state.clock = clock
    app.state.anchoring = None
    if anchor_every:
        from api.anchoring import Anchoring

        app.state.anchoring = Anchoring(app.state.uow_factory, clock, every=anchor_every,
                                        journal=os.environ.get("USINE_AUDIT_JOURNAL") or None)
    app.state.secret_key = resolve_secret(secret_key)
    app.state.token_ttl = token_ttl_seconds or _token_ttl()
    from services.signin import SigninGate

    app.state.signin = SigninGate(app.state.uow_factory, clock, signin_policy)
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    # Outermost of Usine's: the request id is bound, and the request counted, whatever answers.
    app.add_middleware(ObservabilityMiddleware)
    app.state.metrics_collector = DatabaseCollector(app.state.uow_factory, clock)
    for module in ROUTERS:
        app.include_router(module.router)
    if os.environ.get("USINE_WEB", "1") != "0":
        from web.app import mount_web  # the web workspace at /ui (issue 6); it imports this package

        mount_web(app, uow_factory=uow_factory, clock=clock, signin=app.state.signin)
    _install_docs(app)
    _complete_openapi(app)
    return app


SWAGGER_DIR = Path(__file__).parent / "static" / "swagger"


def _install_docs(app: FastAPI) -> None:
    """`/docs`, the interactive OpenAPI page, served from files shipped with Usine (swagger-ui-dist,
    Apache-2.0, under api/static/swagger/): FastAPI's default page loads them from a CDN, which a
    regional network without internet access cannot reach — the page stayed blank."""
    app.mount("/api-static/swagger", StaticFiles(directory=str(SWAGGER_DIR)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} — documentation",
                                   swagger_js_url="/api-static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/api-static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/api-static/swagger/favicon-32x32.png",
                                   oauth2_redirect_url="/api-static/swagger/oauth2-redirect.html")


def _complete_openapi(app: FastAPI) -> None:
    """Add the problem-details schemas the error responses refer to."""

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                             tags=app.openapi_tags)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (FieldError, ProblemDetails):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in definition.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = definition
        _examples_on_bodies(schema)
        _problems_on_every_operation(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


GENERIC_PROBLEMS = ("401", "403", "404", "422")
PUBLIC_PATHS = ("/health", "/health/live", "/health/ready", "/metrics")  # answered without a token


def _problems_on_every_operation(schema: dict) -> None:
    """Every error of every route goes through the problem handlers: document it so, including on
    routes whose authors did not list them (and instead of FastAPI's default 422 schema)."""
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in GENERIC_PROBLEMS:
                if status == "401" and path in PUBLIC_PATHS:
                    continue
                entry = responses.setdefault(status, {"description": TITLES.get(int(status), "Erreur")})
                entry["content"] = dict(content)
            if method == "post" and "413" not in responses:
                responses["413"] = {"description": TITLES[413], "content": dict(content)}


def _examples_on_bodies(schema: dict) -> None:
    """Every request body shows an example on its media type: the body model's first example."""
    components = schema.get("components", {}).get("schemas", {})
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for media in body.get("content", {}).values():
                if "example" in media or "examples" in media:
                    continue
                target = media.get("schema", {})
                for option in target.get("anyOf", [target]):
                    ref = option.get("$ref", "")
                    examples = components.get(ref.rsplit("/", 1)[-1], {}).get("examples") if ref else None
                    if examples:
                        media["example"] = examples[0]
                        break
