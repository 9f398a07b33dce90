"""Users (administration): list, create, disable, re-enable, set a password. Passwords are
argon2-hashed, never shown."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from api.deps import get_clock, get_uow_factory, require_roles
from api.idempotency import execute
from api.problems import Problem, problem_responses
from api.schemas import PasswordSetIn, UserIn, UserOut
from services.commands import Actor
from services.users import change_password, create_user, disable_user, enable_user, list_users

router = APIRouter(tags=["utilisateurs"])
Role = Literal["applicant", "consultant", "officer", "head", "finance", "auditor", "admin"]


@router.get("/users", response_model=list[UserOut], responses=problem_responses(401, 403, 422),
            summary="Les comptes (administration)")
def get_users(actor: Annotated[Actor, Depends(require_roles("admin"))], uow_factory=Depends(get_uow_factory),
              role: Annotated[Role | None, Query()] = None):
    with uow_factory() as uow:
        return list_users(uow, role=role)


@router.post("/users", status_code=201, response_model=UserOut, responses=problem_responses(401, 403, 409, 422),
             summary="Créer un compte (administration)")
def post_user(request: Request, body: Annotated[UserIn, Body()],
              actor: Annotated[Actor, Depends(require_roles("admin"))],
              uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Le périmètre doit aller avec le rôle : des régions pour officer, head, finance et auditor ;
    un SIREN pour applicant ; le nom du prestataire pour consultant. Mot de passe de 10 caractères
    au moins ; il n'est jamais renvoyé."""
    args = body.model_dump()

    def work(uow):
        user = create_user(uow=uow, clock=clock, **args)
        return 201, user, {"Location": f"/users/{user['username']}"}

    fingerprint = {k: v for k, v in args.items() if k != "password"}
    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload=fingerprint, work=work)


@router.post("/users/{username}/disable", response_model=UserOut, responses=problem_responses(401, 403, 404, 409, 422),
             summary="Désactiver un compte : il ne peut plus se connecter, ses jetons cessent de valoir")
def post_disable(request: Request, username: Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")],
                 actor: Annotated[Actor, Depends(require_roles("admin"))],
                 uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    if username == actor.name:
        raise Problem(403, "Un administrateur ne désactive pas son propre compte (il perdrait l'accès).",
                      rule="not_allowed", field="username")

    def work(uow):
        return 200, disable_user(uow=uow, clock=clock, username=username), {}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload={}, work=work)


UsernamePath = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")]


@router.post("/users/{username}/enable", response_model=UserOut, responses=problem_responses(401, 403, 404, 409, 422),
             summary="Réactiver un compte désactivé : il se connecte à nouveau (ses anciens jetons restent sans valeur)")
def post_enable(request: Request, username: UsernamePath, actor: Annotated[Actor, Depends(require_roles("admin"))],
                uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    def work(uow):
        return 200, enable_user(uow=uow, clock=clock, username=username), {}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload={}, work=work)


@router.post("/users/{username}/password", response_model=UserOut, responses=problem_responses(401, 403, 404, 422),
             summary="Donner un nouveau mot de passe à un compte (administration) : ses jetons et sessions web cessent de valoir")
def post_password(username: UsernamePath, body: Annotated[PasswordSetIn, Body()],
                  actor: Annotated[Actor, Depends(require_roles("admin"))],
                  uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Le mot de passe suit la règle des comptes (10 caractères au moins) ; il n'est jamais
    renvoyé. Les tentatives échouées du compte sont oubliées (un compte bloqué se débloque)."""
    return change_password(uow_factory=uow_factory, clock=clock, username=username, password=body.password)
