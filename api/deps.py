"""FastAPI dependencies shared by every router (including `api.routes_audit`).

- `get_uow_factory`, `get_clock`: the app's unit-of-work factory and service clock;
- `current_actor`: the `services.commands.Actor` of the bearer token's user (401 otherwise);
  an auditor is refused (403) on any method but GET/HEAD/OPTIONS, whatever the route;
- `require_roles(*roles)`: a dependency giving the actor when its role is one of `roles` (403);
- `bearer_with_roles(*roles)`: the same rules, the account read inside the route's own unit of
  work (`api.idempotency.execute(bearer=…)`: the commands);
- `scoped_dossier_id(dossier_id, actor, uow)`: the dossier's id when it exists and is in the
  actor's scope, else a 404 problem — never revealing that another region's dossier exists.

Usage:

    @router.get("/audit/dossiers/{dossier_id}/replay")
    def replay(dossier_id: int, actor: Actor = Depends(require_roles("auditor")),
               uow_factory=Depends(get_uow_factory)):
        with uow_factory() as uow:
            did = scoped_dossier_id(dossier_id, actor, uow)
            ...
"""
from __future__ import annotations

from typing import Annotated, Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import select

from api.problems import Problem
from api.security import InvalidToken, read_token
from db import models as m
from services.commands import Actor
from services.search import in_scope
from services.uow import load_dossier
from services.users import active_actor, load_actor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ID = 2**31 - 1

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False,
                                     description="Jeton obtenu par POST /auth/token (flux OAuth2 « password »).")
# The OpenAPI security requirement of the routes guarded by `bearer_with_roles`.
BEARER_SECURITY = [{oauth2_scheme.scheme_name: []}]


# The dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in
# the thread pool, and each such hop costs more than the dependency itself.
async def get_uow_factory(request: Request):
    return request.app.state.uow_factory


async def get_clock(request: Request):
    return request.app.state.clock


def _unauthenticated(reason: str, error: str | None = None) -> Problem:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return Problem(401, f"Authentification requise : {reason}.", rule="unauthenticated",
                   headers={"WWW-Authenticate": challenge})


async def bearer_claims(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> dict:
    """The claims of the request's bearer token (401 when absent, expired or forged)."""
    return claims_of(request, token)


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer …`, read as `oauth2_scheme` reads it."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    return token if scheme.lower() == "bearer" else None


def claims_of(request: Request, token: str | None) -> dict:
    if not token:
        raise _unauthenticated("aucun jeton fourni (en-tête « Authorization: Bearer … »)")
    try:
        return read_token(request.app.state.secret_key, token)
    except InvalidToken as exc:
        raise _unauthenticated(str(exc), "invalid_token") from None


def checked_actor(request: Request, actor: Actor | None, allowed: tuple[str, ...] | None = None) -> Actor:
    """The account's actor as just read: 401 when unknown or disabled; 403 for an auditor on any
    method but GET/HEAD/OPTIONS, or for a role not in `allowed`."""
    if actor is None:
        raise _unauthenticated("compte inconnu ou désactivé, ou jeton révoqué (mot de passe changé, "
                               "déconnexion) : reconnectez-vous", "invalid_token")
    if actor.role == "auditor" and request.method not in SAFE_METHODS:
        raise Problem(403, "Un auditeur consulte : il ne modifie rien.", rule="not_allowed", field="as")
    if allowed is not None and actor.role not in allowed:
        raise Problem(403, f"Le rôle « {actor.role} » ne peut pas faire cela (rôles autorisés : {', '.join(allowed)}).",
                      rule="not_allowed", field="as")
    request.state.actor = actor
    return actor


def current_actor(request: Request, claims: Annotated[dict, Depends(bearer_claims)],
                  uow_factory=Depends(get_uow_factory)) -> Actor:
    """The actor behind the bearer token. The user is reloaded on every request, so a disabled
    account or a changed role or scope takes effect at once, whatever tokens are out there."""
    return checked_actor(request, load_actor(uow_factory, claims["sub"], claims["ver"]))


def require_roles(*roles: str) -> Callable[..., Actor]:
    """A dependency: the current actor when its role is one of `roles`, else 403."""
    allowed = tuple(roles)

    async def dependency(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        return checked_actor(request, actor, allowed)

    dependency.roles = allowed  # type: ignore[attr-defined]
    dependency.__name__ = f"require_roles_{'_'.join(allowed)}"
    return dependency


class Bearer:
    """A verified token whose account is checked later, inside the request's own unit of work
    (`authorize`): the commands' path, where reading the user on a connection of its own cost
    a pool checkout, its ping and a thread hop more than the command's transaction needs. The
    rules are `current_actor`'s and `require_roles`'s (`checked_actor`), read in the same
    transaction as the command they allow."""

    def __init__(self, name: str, roles: tuple[str, ...], version: int):
        self.name, self.roles, self.version = name, roles, version
        self.actor: Actor | None = None

    def authorize(self, request: Request, session) -> Actor:
        self.actor = checked_actor(request, active_actor(session, self.name, self.version), self.roles)
        return self.actor


def bearer_with_roles(*roles: str) -> Callable[..., Bearer]:
    """A dependency for routes that run one unit of work (`api.idempotency.execute(bearer=…)`):
    the token is verified now, the account in that unit of work. When the token's own role claim
    is not among `roles`, the account is read at once, so that a refusal (403) still comes
    before the body's validation (422), as with `require_roles`; the account decides, not the
    claim (a role may have changed since the token was issued)."""
    allowed = tuple(roles)

    # One dependency reading the header itself, not three nested ones (`oauth2_scheme`,
    # `bearer_claims`, `get_uow_factory`): the solver's cost is per dependency, at every request.
    # The routes declare the OAuth2 scheme in the OpenAPI document (`BEARER_SECURITY`).
    async def dependency(request: Request) -> Bearer:
        claims = claims_of(request, bearer_token(request))
        if claims.get("role") not in allowed or claims.get("role") == "auditor":
            actor = await run_in_threadpool(load_actor, request.app.state.uow_factory, claims["sub"], claims["ver"])
            checked_actor(request, actor, allowed)
        return Bearer(claims["sub"], allowed, claims["ver"])

    dependency.roles = allowed  # type: ignore[attr-defined]
    dependency.__name__ = f"bearer_with_roles_{'_'.join(allowed)}"
    return dependency


def dossier_not_found() -> Problem:
    return Problem(404, "Dossier introuvable.", rule="not_found")


def scoped_dossier(dossier_id: int | str, actor: Actor, uow) -> m.Dossier:
    """The dossier (by id, or by reference) when the actor may see it; 404 otherwise."""
    dossier = None
    if isinstance(dossier_id, bool):
        pass
    elif isinstance(dossier_id, int) or (isinstance(dossier_id, str) and dossier_id.isascii() and dossier_id.isdigit()):
        number = int(dossier_id)
        if 1 <= number <= MAX_ID:
            dossier = load_dossier(uow.session, number)
    elif isinstance(dossier_id, str) and 0 < len(dossier_id) <= 32 and dossier_id.isprintable():
        dossier = uow.session.scalar(select(m.Dossier).where(m.Dossier.reference == dossier_id))
    if dossier is None or not in_scope(actor, dossier, uow.catalogue):
        raise dossier_not_found()
    return dossier


def scoped_dossier_id(dossier_id: int | str, actor: Actor, uow) -> int:
    """The dossier's id when it exists and the actor may see it; a 404 problem otherwise."""
    return scoped_dossier(dossier_id, actor, uow).id


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: 3`, `"3"` or `W/"3"` → 3; absent or `*` → None."""
    if value is None:
        return None
    raw = value.strip()
    if raw == "*":
        return None
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise Problem(422, "If-Match : numéro de version attendu (ex. « \"3\" »).", rule="invalid_input", field="If-Match")
    return int(raw)


def etag(version: int) -> str:
    return f'"{version}"'


CurrentActor = Annotated[Actor, Depends(current_actor)]
UowFactory = Annotated[object, Depends(get_uow_factory)]
Clock = Annotated[object, Depends(get_clock)]

__all__ = ["get_uow_factory", "get_clock", "current_actor", "require_roles", "bearer_with_roles", "Bearer",
           "checked_actor", "scoped_dossier_id",
           "scoped_dossier", "parse_if_match", "etag", "oauth2_scheme", "CurrentActor", "UowFactory", "Clock"]
