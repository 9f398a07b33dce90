"""Sign-in (OAuth2 password flow) and the signed-in user."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from api.deps import current_actor, get_uow_factory
from api.problems import Problem, problem_responses
from api.schemas import TokenOut, UserOut
from api.security import issue_token
from services.commands import Actor
from services.users import authenticate, get_user, user_view

router = APIRouter(tags=["authentification"])


@router.post("/auth/token", response_model=TokenOut, responses=problem_responses(400, 422),
             summary="Obtenir un jeton (OAuth2, flux « password »)",
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                 "example": {"grant_type": "password", "username": "agent.occitanie",
                             "password": "demo-usine-2022"}}}}})
def token(request: Request,
          username: Annotated[str, Form(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")],
          password: Annotated[str, Form(min_length=1, max_length=256)],
          grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
          scope: Annotated[str, Form(max_length=200)] = "",
          uow_factory=Depends(get_uow_factory)):
    """Échange identifiant et mot de passe contre un jeton signé (JWT HS256) qui expire
    (`expires_in` secondes). Un compte inconnu, désactivé ou un mauvais mot de passe reçoivent
    la même réponse (400 `invalid_grant`, RFC 6749 §5.2)."""
    with uow_factory() as uow:
        user = authenticate(uow=uow, username=username, password=password)
        if user is None:
            raise Problem(400, "Identifiant ou mot de passe incorrect, ou compte désactivé.", rule="invalid_grant",
                          field="password", error="invalid_grant")
        ttl = request.app.state.token_ttl
        access = issue_token(request.app.state.secret_key, username=user.username, role=user.role, ttl_seconds=ttl)
    return {"access_token": access, "token_type": "bearer", "expires_in": ttl}


@router.get("/me", response_model=UserOut, responses=problem_responses(401, 403),
            summary="Le compte connecté, son rôle et son périmètre")
def me(actor: Annotated[Actor, Depends(current_actor)], uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        return user_view(get_user(uow, actor.name))
