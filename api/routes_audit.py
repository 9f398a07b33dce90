"""Auditor routes (`/audit`): verification, replay at any instant with rule re-computation,
exports (JSON, PDF, programme zip), anchors. For the auditor role only, read-only (GET); an
auditor sees the dossiers and programmes of its regions. Integrity alarms about a dossier
whose row is gone (anchored, then deleted) are shown to every auditor: that dossier has no
region left to scope it by, and hiding the alarm would hide the tampering."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from api.deps import get_clock, get_uow_factory, require_roles, scoped_dossier_id
from api.problems import Problem
from db import models as m
from services.commands import Actor

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[Actor, Depends(require_roles("auditor"))]
DossierId = Annotated[str, Path(min_length=1, max_length=32, description="Identifiant ou référence du dossier")]


def _instant(value: str | None) -> datetime | None:
    from services.audit.export import parse_instant

    return None if value is None else parse_instant(value, "at")


def _engine(uow_factory, uow):
    return getattr(uow_factory, "engine", None) or uow.session.get_bind()


@router.get("/verify", summary="Vérifier l'intégrité de l'historique (chaînes, dossiers, ancres)")
def verify(actor: Auditor, uow_factory=Depends(get_uow_factory),
           dossier_id: Annotated[str | None, Query(max_length=32, description="Un seul dossier (id ou référence)")] = None):
    from services.audit.verify import verify_database
    from services.search import in_scope

    # Scope first, in a unit of work closed before verifying: on SQLite an open unit of work
    # holds the write lock the verification's own connection would wait for.
    with uow_factory() as uow:
        did = scoped_dossier_id(dossier_id, actor, uow) if dossier_id is not None else None
        engine = _engine(uow_factory, uow)
        if did is None:
            rows = uow.session.scalars(select(m.Dossier)).all()
            visible = {d.id for d in rows if in_scope(actor, d, uow.catalogue)}
            existing = {d.id for d in rows}
    report = verify_database(engine, dossier_id=did).as_dict()
    if did is None:
        report["problems"] = [p for p in report["problems"]
                              if p.get("dossier_id") is None or p["dossier_id"] in visible
                              or p["dossier_id"] not in existing]
        report["ok"] = not report["problems"]
    return report


@router.get("/dossiers/{dossier_id}/replay", summary="Le dossier rejoué depuis ses événements, à un instant donné",
            description="Sans `at` : maintenant. Un `at` antérieur au premier événement du dossier est refusé "
                        "(422, règle `before_first_event`, champ `at` : le dossier n'existait pas encore). "
                        "`diff=true` compare avec l'état enregistré actuel : seulement sans `at` ou avec un `at` "
                        "postérieur au dernier événement (sinon 422 `invalid_input`, champ `diff`).")
def replay(dossier_id: DossierId, actor: Auditor, uow_factory=Depends(get_uow_factory),
           at: Annotated[str | None, Query(description="Instant ISO 8601 avec fuseau (défaut : maintenant)")] = None,
           diff: Annotated[bool, Query(description="Comparer avec l'état enregistré actuel (sans `at`, ou `at` "
                                                   "postérieur au dernier événement)")] = False):
    from services.audit.replay import audit_replay

    instant = _instant(at)
    with uow_factory() as uow:
        did = scoped_dossier_id(dossier_id, actor, uow)
        result, differences = audit_replay(uow.session, did, at=instant, compare=diff, catalogue=uow.catalogue)
        out = result.as_dict()
        if differences is not None:
            out["diff"] = {"compared_with": "état enregistré actuel", "identical": not differences,
                           "differences": differences}
    return out


def _export(dossier_id: str, actor: Actor, uow_factory, clock) -> dict:
    from services.audit.export import export_dossier

    with uow_factory() as uow:
        did = scoped_dossier_id(dossier_id, actor, uow)
        return export_dossier(uow.session, did, clock=clock, catalogue=uow.catalogue, exported_by=actor.name)


@router.get("/dossiers/{dossier_id}/export.json", summary="Historique certifié (JSON, schéma dossier-history.v1)")
def export_json(dossier_id: DossierId, actor: Auditor, uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    data = _export(dossier_id, actor, uow_factory, clock)
    return JSONResponse(data, headers={
        "Content-Disposition": f'attachment; filename="{data["dossier"]["reference"]}.json"'})


@router.get("/dossiers/{dossier_id}/export.pdf", summary="Historique certifié (PDF lisible)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def export_pdf(dossier_id: DossierId, actor: Auditor, uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    from services.audit.pdf import render_pdf

    data = _export(dossier_id, actor, uow_factory, clock)
    return Response(render_pdf(data), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{data["dossier"]["reference"]}.pdf"'})


@router.get("/programmes/{programme_id}/export.zip", summary="Tous les dossiers d'un programme (archive zip)",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def export_programme(programme_id: Annotated[str, Path(max_length=64)], actor: Auditor,
                     uow_factory=Depends(get_uow_factory), clock=Depends(get_clock),
                     pdf: Annotated[bool, Query(description="Joindre le PDF de chaque dossier")] = True):
    from services.audit.export import export_programme_bytes
    from services.search import in_scope, programme_in_scope

    with uow_factory() as uow:
        if not programme_in_scope(actor, programme_id, uow.catalogue):
            raise Problem(404, "Programme introuvable.", rule="not_found", field="programme_id")
        ids = [d.id for d in uow.session.scalars(select(m.Dossier).where(m.Dossier.programme_id == programme_id)
                                                 .order_by(m.Dossier.id)) if in_scope(actor, d, uow.catalogue)]
    body = export_programme_bytes(uow_factory, programme_id, clock=clock, with_pdf=pdf, exported_by=actor.name,
                                  dossier_ids=ids)
    return Response(body, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{programme_id}-audit.zip"'})


@router.get("/anchors", summary="Les dernières ancres quotidiennes (têtes de chaînes enregistrées)")
def anchors(actor: Auditor, uow_factory=Depends(get_uow_factory),
            limit: Annotated[int, Query(ge=1, le=1000)] = 50):
    from services.audit.anchors import list_anchors

    with uow_factory() as uow:
        return list_anchors(uow.session, limit)


@router.get("/schema/dossier-history.v1.json", summary="Schéma JSON de l'export d'un dossier")
def export_schema(actor: Auditor):
    from services.audit.export import schema

    return schema()
