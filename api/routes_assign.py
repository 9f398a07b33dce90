"""Work sharing (issue 19, part 4): assign one dossier to an officer, and the bulk actions of a
selection — thin shells over `services.assignment` and `services.bulk_actions`, each dossier its
own unit of work, with its own result."""
from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_clock, get_uow_factory, require_roles
from api.idempotency import HEADER, Idempotency, execute
from api.problems import Problem, problem_responses
from api.routes_commands import HEADERS
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
             summary="Affecter le dossier à un(e) chargé(e) de mission (le prendre, le transmettre, le router)",
             openapi_extra={"parameters": HEADERS[1:]})
def assign(request: Request, dossier_id: DossierRef, body: AssignIn,
           actor: Annotated[Actor, Depends(require_roles(*ASSIGNERS))],
           uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    def work(uow):
        out = assign_officer(uow=uow, clock=clock, actor=actor, dossier_id=dossier_id, officer=body.officer,
                             note=body.note, expected_version=body.expected_version)
        return 200, {"dossier_id": out.dossier_id, "reference": out.reference, "state": out.state,
                     "version": out.version, **{k: out.details[k] for k in ("officer", "officer_name", "kind")}}, {}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload=body.model_dump(),
                   work=work, dossier_id=dossier_id)


class _KeyLedger:
    """Each dossier's result of a bulk request kept under the request's Idempotency-Key and the
    dossier's rank (as a bulk vote's votes are): the request sent again is answered, dossier by
    dossier, from what committed, and runs the others."""

    def __init__(self, idem: Idempotency, uow_factory):
        self.idem, self.uow_factory = idem, uow_factory
        self._open: Idempotency | None = None

    def recall(self, uow, index: int) -> dict | None:
        row = self.idem.item(index)._find(uow.session)
        if row is None or row.status_code is None:
            return None
        if row.fingerprint != self.idem.fingerprint:
            raise Problem(422, f"La clé « {self.idem.key} » a déjà servi pour une autre requête sur cette ressource.",
                          rule="idempotency_key_reused", field=HEADER)
        return json.loads(row.body)

    def open(self, uow, index: int) -> None:
        self._open = self.idem.item(index)
        self._open.reserve(uow.session)
        uow.hold_commit()

    def close(self, uow, index: int, result: dict) -> None:
        assert self._open is not None
        self._open.complete(JSONResponse(result))
        uow.commit_held()

    def refused(self, index: int, result: dict) -> None:
        self.idem.item(index).record(self.uow_factory, JSONResponse(result))


@router.post("/dossiers/bulk", response_model=BulkOut, responses=problem_responses(401, 403, 422),
             summary="Une action sur une sélection de dossiers : une commande par dossier, un résultat par dossier",
             openapi_extra={"parameters": HEADERS[1:]})
def bulk(request: Request, body: BulkIn, actor: Annotated[Actor, Depends(require_roles(*ASSIGNERS))],
         uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Avec un en-tête `Idempotency-Key`, la même sélection renvoyée (réseau coupé, arrêt du
    serveur au milieu) n'applique chaque commande qu'une fois : les dossiers déjà traités sont
    répondus tels qu'ils l'ont été, les autres sont traités."""
    idem = Idempotency.from_request(request, actor, body.model_dump(mode="json"), clock)
    if idem is not None:
        replayed = idem.replay(uow_factory, request)
        if replayed is not None:
            return replayed
    versions = {int(k): v for k, v in (body.expected_versions or {}).items() if k.isdigit() and len(k) < 10}
    results = run_bulk(uow_factory, clock, actor, action=body.action, dossier_ids=list(body.dossiers),
                       officer=body.officer, note=body.note, kinds=body.kinds, session=body.session,
                       versions=versions, ledger=_KeyLedger(idem, uow_factory) if idem is not None else None)
    done = sum(1 for r in results if r.ok)
    response = JSONResponse({"done": done, "refused": len(results) - done, "items": [r.as_dict() for r in results]})
    if idem is not None:
        idem.record(uow_factory, response)
    return response
