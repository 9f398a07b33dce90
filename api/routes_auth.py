"""Sign-in (OAuth2 password flow), sign-out everywhere, the password change, and the signed-in
user. Sign-in abuse and revocation: docs/security.md."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import current_actor, get_uow_factory
from api.problems import Problem, problem_responses
from api.schemas import PasswordChangeIn, TokenOut, UserOut
from api.security import issue_token
from services.commands import Actor
from services.signin import Refusal
from services.users import change_password, end_all_sessions, get_user, user_view

router = APIRouter(tags=["authentification"])


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def refusal_problem(refusal: Refusal, *, field: str = "password") -> Problem:
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
    extra = {"error": "invalid_grant"} if refusal.reason == "invalid" else {}
    return Problem(refusal.status, refusal.message, rule=refusal.rule, field=field if refusal.reason == "invalid" else None,
                   headers=headers, **extra)


@router.post("/auth/token", response_model=TokenOut, responses=problem_responses(400, 422, 429),
             summary="Obtenir un jeton (OAuth2, flux « password »)",
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                 "example": {"grant_type": "password", "username": "agent.occitanie",
                             "password": "demo-usine-2022"}}}}})
async def token(request: Request,
                username: Annotated[str, Form(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")],
                password: Annotated[str, Form(min_length=1, max_length=256)],
                grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
                scope: Annotated[str, Form(max_length=200)] = ""):
    """Échange identifiant et mot de passe contre un jeton signé (JWT HS256) qui expire
    (`expires_in` secondes). Un compte inconnu, désactivé ou un mauvais mot de passe reçoivent
    la même réponse (400 `invalid_grant`, RFC 6749 §5.2). Trop d'échecs pour un identifiant (qu'il
    existe ou non) : délai croissant puis blocage temporaire (429 `signin_locked`, `Retry-After`) ;
    trop de tentatives d'une adresse : 429 `signin_rate_limited` ; trop de vérifications en cours :
    429 `signin_busy`."""
    result = await request.app.state.signin.attempt(username, password, client_address(request))
    if isinstance(result, Refusal):
        raise refusal_problem(result)
    ttl = request.app.state.token_ttl
    access = issue_token(request.app.state.secret_key, username=result.username, role=result.role,
                         version=result.token_version, ttl_seconds=ttl)
    return {"access_token": access, "token_type": "bearer", "expires_in": ttl}


@router.post("/auth/logout", status_code=204, responses=problem_responses(401),
             summary="Se déconnecter partout : tous les jetons et sessions web du compte cessent de valoir")
def logout_everywhere(actor: Annotated[Actor, Depends(current_actor)], uow_factory=Depends(get_uow_factory)):
    end_all_sessions(uow_factory=uow_factory, username=actor.name)
    return Response(status_code=204)


@router.post("/me/password", status_code=204, responses=problem_responses(400, 401, 422, 429),
             summary="Changer son mot de passe : les jetons et sessions web émis avant cessent de valoir")
async def post_my_password(request: Request, body: Annotated[PasswordChangeIn, Body()],
                           actor: Annotated[Actor, Depends(current_actor)]):
    """Le mot de passe actuel est vérifié comme à la connexion (ses échecs comptent pour le
    blocage). Le nouveau suit la règle des comptes (10 caractères au moins). Ensuite, demander
    un nouveau jeton (`POST /auth/token`)."""
    checked = await request.app.state.signin.attempt(actor.name, body.current_password, client_address(request))
    if isinstance(checked, Refusal):
        if checked.reason == "invalid":
            raise Problem(400, "current_password : le mot de passe actuel est incorrect ; rien n'a été changé.",
                          rule="invalid_grant", field="current_password")
        raise refusal_problem(checked)
    await run_in_threadpool(change_password, uow_factory=request.app.state.uow_factory, clock=request.app.state.clock,
                            username=actor.name, password=body.new_password)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=problem_responses(401, 403),
            summary="Le compte connecté, son rôle et son périmètre")
def me(actor: Annotated[Actor, Depends(current_actor)], uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        return user_view(get_user(uow, actor.name))
