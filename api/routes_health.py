"""Health: the service answers and its database too (no authentication)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import text

from api.deps import get_uow_factory
from api.problems import Problem, problem_responses
from api.schemas import HealthOut

router = APIRouter(tags=["santé"])


@router.get("/health", response_model=HealthOut, responses=problem_responses(503), summary="État du service")
def health(request: Request, uow_factory=Depends(get_uow_factory)):
    try:
        with uow_factory() as uow:
            uow.session.execute(text("SELECT 1"))
    except Exception:
        raise Problem(503, "La base de données ne répond pas.", rule="database_unavailable") from None
    return {"status": "ok", "database": "ok", "version": request.app.version}
