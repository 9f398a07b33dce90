"""Programmes: the catalogue of programme versions (files under programmes/files/)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import current_actor, get_clock, get_uow_factory, require_roles
from api.idempotency import execute
from api.problems import Problem, problem_responses
from api.schemas import ProgrammeRow
from rules.calendar import paris_date
from services.commands import Actor

router = APIRouter(tags=["programmes"])
ProgrammeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]


def _row(p, today) -> dict:
    return {"id": p.id, "version": p.version, "name": p.name, "region": p.region, "status": p.status,
            "windows": [{"opens_on": w.opens_on.isoformat(), "closes_on": w.closes_on.isoformat(), "label": w.label}
                        for w in p.windows],
            "open_on": today.isoformat(), "open": any(w.opens_on <= today <= w.closes_on for w in p.windows)}


@router.get("/programmes", response_model=list[ProgrammeRow], responses=problem_responses(401),
            summary="Les programmes (dernière version de chacun)")
def list_programmes(actor: Annotated[Actor, Depends(current_actor)], uow_factory=Depends(get_uow_factory),
                    clock=Depends(get_clock)):
    catalogue = uow_factory().catalogue
    today = paris_date(clock.now())
    return [_row(catalogue.latest(pid), today) for pid in catalogue.ids()]


@router.get("/programmes/{programme_id}", response_model=dict[str, Any], responses=problem_responses(401, 404, 422),
            summary="Un programme : toutes ses règles, telles que le fichier les fixe (dernière version)")
def get_programme(programme_id: ProgrammeId, actor: Annotated[Actor, Depends(current_actor)],
                  uow_factory=Depends(get_uow_factory),
                  version: Annotated[int | None, Query(ge=1, le=1000)] = None):
    catalogue = uow_factory().catalogue
    if programme_id not in catalogue.ids():
        raise Problem(404, f"Programme inconnu : « {programme_id} ».", rule="not_found")
    if version is None:
        p = catalogue.latest(programme_id)
    else:
        found = [p for p in catalogue.all() if p.id == programme_id and p.version == version]
        if not found:
            raise Problem(404, f"Version {version} inconnue pour « {programme_id} ».", rule="not_found")
        p = found[0]
    return p.model_dump(mode="json")


@router.post("/programmes/sync", response_model=dict[str, list[str]], responses=problem_responses(401, 403, 409, 422),
             summary="Enregistrer en base les versions de programme nouvelles (administration)")
def sync(request: Request, actor: Annotated[Actor, Depends(require_roles("admin"))],
         uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Chaque version de programme est enregistrée telle que chargée (contenu et empreinte). Une
    version déjà enregistrée dont le fichier a changé est refusée (409) : une modification de
    programme est une nouvelle version."""
    from services.programme_sync import sync_programmes

    def work(uow):
        try:
            added = sync_programmes(uow=uow, clock=clock)
        except ValueError as exc:
            raise Problem(409, str(exc), rule="programme_changed") from None
        return 200, {"added": added}, {}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload={}, work=work)
