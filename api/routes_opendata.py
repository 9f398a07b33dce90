"""`GET /opendata/subventions`: a programme's voted aids in the SCDL « subventions » schema 2.1.1,
as CSV (what the open-data portal takes) or JSON, for the region's staff (officer, head, finance,
auditor). A programme of another region answers 404, as if it did not exist."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from api.deps import get_uow_factory, require_roles
from api.problems import Problem, problem_responses
from services.commands import Actor
from services.opendata import COLUMNS, SCHEMA, SCHEMA_VERSION, export_subsidies
from services.search import programme_in_scope

router = APIRouter(tags=["données ouvertes"])
Staff = Annotated[Actor, Depends(require_roles("officer", "head", "finance", "auditor"))]


@router.get("/opendata/subventions", responses={**problem_responses(401, 403, 404, 422),
                                                200: {"content": {"text/csv": {}, "application/json": {}},
                                                      "description": "Les aides votées, une ligne par dossier"}},
            summary="Les aides votées d'un programme au format SCDL « subventions » 2.1.1 (CSV ou JSON)")
def subsidies(actor: Staff, uow_factory=Depends(get_uow_factory),
              programme: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$",
                                              description="Identifiant du programme", examples=["occitanie-prif"])] = ...,
              voted_from: Annotated[date | None, Query(alias="from", description="Votées à partir de ce jour")] = None,
              voted_to: Annotated[date | None, Query(alias="to", description="Votées jusqu'à ce jour inclus")] = None,
              attributor_siret: Annotated[str | None, Query(min_length=14, max_length=20,
                                                            description="SIRET de la collectivité qui attribue, si le fichier du programme ne le donne pas")] = None,
              format: Annotated[Literal["csv", "json"], Query(description="csv (défaut) ou json")] = "csv"):
    with uow_factory() as uow:
        if programme not in uow.catalogue.ids() or not programme_in_scope(actor, programme, uow.catalogue):
            raise Problem(404, f"Programme inconnu : « {programme} ».", rule="not_found")
        export = export_subsidies(uow=uow, programme_id=programme, attributor_siret=attributor_siret,
                                  voted_from=voted_from, voted_to=voted_to)
    if format == "json":
        return JSONResponse({"schema": SCHEMA, "version": SCHEMA_VERSION, "programme": programme,
                             "columns": list(COLUMNS), "rows": export.rows})
    filename = f"subventions-{programme}.csv"
    return Response(export.csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
