"""Health and metrics (no authentication):

- `GET /health/live` — liveness: the process answers; touches nothing else (a database outage
  must not get a healthy API killed and restarted);
- `GET /health/ready` — readiness: the database answers and its schema is at the migrations'
  heads; 503 otherwise (a load balancer sends no traffic to it meanwhile);
- `GET /health` — the older check (the database answers), kept for `usine serve` and scripts;
- `GET /metrics` — Prometheus text exposition (`services.metrics`)."""
from __future__ import annotations

import functools
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import get_uow_factory
from api.problems import Problem, problem_responses
from api.schemas import HealthOut
from services import metrics

router = APIRouter(tags=["santé"])
log = logging.getLogger("usine.api")


class LiveOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    database: str
    migrations: str
    version: str


@router.get("/health", response_model=HealthOut, responses=problem_responses(503), summary="État du service")
def health(request: Request, uow_factory=Depends(get_uow_factory)):
    try:
        with uow_factory() as uow:
            uow.session.execute(text("SELECT 1"))
    except Exception:
        raise Problem(503, "La base de données ne répond pas.", rule="database_unavailable") from None
    return {"status": "ok", "database": "ok", "version": request.app.version}


@router.get("/health/live", response_model=LiveOut, summary="Vivacité : le processus répond (sans la base)")
async def live():
    return {"status": "ok"}


@functools.lru_cache(maxsize=1)
def expected_heads() -> frozenset[str]:
    """The heads of the migrations shipped with this code (read once)."""
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _database_heads(uow_factory) -> frozenset[str] | None:
    """The revisions the database is at; None when it has no migration table (schema built by
    other means, or an empty database)."""
    try:
        with uow_factory() as uow:
            return frozenset(uow.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception:
        return None


@router.get("/health/ready", response_model=ReadyOut, responses=problem_responses(503),
            summary="Disponibilité : la base répond et ses migrations sont à jour (503 sinon)")
def ready(request: Request, uow_factory=Depends(get_uow_factory)):
    try:
        with uow_factory() as uow:
            uow.session.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        raise Problem(503, "Pas prêt : la base de données ne répond pas.", rule="not_ready", field="database",
                      headers={"Retry-After": "5"},
                      checks={"database": "unavailable", "migrations": "unknown"}) from None
    expected, actual = expected_heads(), _database_heads(uow_factory)
    if actual != expected:
        seen = ", ".join(sorted(actual)) if actual else "aucune"
        raise Problem(503, f"Pas prêt : la base n'est pas à la dernière migration (base : {seen} ; attendu : "
                           f"{', '.join(sorted(expected))}) — lancer « usine db upgrade ».",
                      rule="not_ready", field="migrations", headers={"Retry-After": "5"},
                      checks={"database": "ok", "migrations": "behind" if actual else "missing"})
    return {"status": "ready", "database": "ok", "migrations": "ok", "version": request.app.version}


@router.get("/metrics", summary="Métriques Prometheus (format texte d'exposition)",
            responses={200: {"content": {"text/plain": {}}, "description": "Métriques"}})
def prometheus_metrics(request: Request):
    body = metrics.render(request.app.state.metrics_collector)
    return Response(body, media_type=metrics.CONTENT_TYPE)
