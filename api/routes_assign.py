"""Work sharing (issue 19, part 4): assign one dossier to an officer, and the bulk actions of a
selection — thin shells over `services.assignment` and `services.bulk_actions`, each dossier its
own unit of work, with its own result."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_clock, get_uow_factory, require_roles
from api.problems import problem_responses
from services.assignment import assign_officer
from services.bulk_actions import MAX_SELECTION, run_bulk
from services.commands import Actor

router = APIRouter(tags=["affectation"])
ASSIGNERS = ("officer", "head")
DossierRef = Annotated[int, Field(ge=1, le=2**31 - 1)]
Username = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")]
Note = Annotated[str, Field(max_length=1000)]


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"officer": "agent2.occitanie", "note": "Relancer pour le Kbis.", "expected_version": 3}]})
    officer: Username
    note: Note | None = None
    expected_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class AssignOut(BaseModel):
    dossier_id: int
    reference: str
    state: str
    version: int
    officer: str
    officer_name: str
    kind: Literal["take", "route", "handover"]


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"action": "assign", "dossiers": [12, 13, 14], "officer": "agent2.occitanie"},
        {"action": "request_documents", "dossiers": [12, 13], "kinds": ["rib", "kbis"]},
        {"action": "propose", "dossiers": [21], "session": "CP-2025-07"}]})
    action: Literal["take", "assign", "request_documents", "propose"]
    dossiers: list[DossierRef] = Field(min_length=1, max_length=MAX_SELECTION)
    officer: Username | None = None
    note: Note | None = None
    kinds: list[Annotated[str, Field(max_length=40)]] | None = Field(default=None, max_length=20)
    session: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    expected_versions: dict[str, int] | None = Field(default=None, description="Version vue de chaque dossier, par identifiant")


class BulkItemOut(BaseModel):
    dossier_id: int
    reference: str | None
    ok: bool
    line: str
    rule: str | None
    message: str | None
    state: str | None
    version: int | None


class BulkOut(BaseModel):
    done: int
    refused: int
    items: list[BulkItemOut]


@router.post("/dossiers/{dossier_id}/assignment", response_model=AssignOut,
             responses=problem_responses(401, 403, 404, 409, 422),
             summary="Affecter le dossier à un(e) chargé(e) de mission (le prendre, le transmettre, le router)")
def assign(dossier_id: DossierRef, body: AssignIn, actor: Annotated[Actor, Depends(require_roles(*ASSIGNERS))],
           uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    with uow_factory() as uow:
        out = assign_officer(uow=uow, clock=clock, actor=actor, dossier_id=dossier_id, officer=body.officer,
                             note=body.note, expected_version=body.expected_version)
    return {"dossier_id": out.dossier_id, "reference": out.reference, "state": out.state, "version": out.version,
            **{k: out.details[k] for k in ("officer", "officer_name", "kind")}}


@router.post("/dossiers/bulk", response_model=BulkOut, responses=problem_responses(401, 403, 422),
             summary="Une action sur une sélection de dossiers : une commande par dossier, un résultat par dossier")
def bulk(body: BulkIn, actor: Annotated[Actor, Depends(require_roles(*ASSIGNERS))],
         uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    versions = {int(k): v for k, v in (body.expected_versions or {}).items() if k.isdigit() and len(k) < 10}
    results = run_bulk(uow_factory, clock, actor, action=body.action, dossier_ids=list(body.dossiers),
                       officer=body.officer, note=body.note, kinds=body.kinds, session=body.session,
                       versions=versions)
    done = sum(1 for r in results if r.ok)
    return {"done": done, "refused": len(results) - done, "items": [r.as_dict() for r in results]}
