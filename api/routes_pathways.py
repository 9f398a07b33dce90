"""A company's pathway (SPEC §11.4): an aid dossier opened from the approved progress plan of
its diagnostic dossier (`POST /dossiers/{plan_id}/aid-dossiers`), and the company's dossiers of
every programme with their aid and loans (`GET /companies/{siren}/pathway`). Thin shells over
`services.pathways`."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from sqlalchemy import select

from api.deps import etag, get_clock, get_uow_factory, require_roles, scoped_dossier
from api.idempotency import execute
from api.problems import Problem, problem_responses
from api.routes_commands import HEADERS
from api.routes_dossiers import command_body
from api.schemas import AidDossierIn, CommandOut, PathwayOut
from db import models as m
from rules.calendar import paris_date
from rules.errors import InvalidInput
from services import pathways
from services.commands import Actor
from services.search import in_scope

router = APIRouter(tags=["parcours"])
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Identifiant du dossier de diagnostic (le plan)")]
READERS = ("applicant", "consultant", "officer", "head", "finance", "auditor")


@router.post("/dossiers/{plan_id}/aid-dossiers", status_code=201, response_model=CommandOut,
             responses=problem_responses(401, 403, 404, 409, 422),
             summary="Ouvrir un dossier d'aide depuis le plan de progrès approuvé (entreprise)",
             openapi_extra={"parameters": HEADERS[1:]})
def open_aid_dossier(plan_id: PlanId, request: Request, body: Annotated[AidDossierIn, Body()],
                     actor: Annotated[Actor, Depends(require_roles("applicant"))],
                     uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Le dossier d'aide nomme les actions du plan qu'il met en œuvre, avec des jours de conseil
    (`consulting`) ou des dépenses d'investissement (`investment`) ; il commence en instruction.
    Refus (422, `field` = `plan` ou `actions`) : `plan_not_approved` avant le vote favorable du
    dossier de diagnostic, `action_not_in_plan` pour un numéro que le plan n'a pas,
    `action_covered` pour une action déjà couverte par un dossier d'aide ouvert ou voté. Le plan
    d'une autre entreprise : 404, comme un dossier inexistant. Réponse 201, `Location`, `ETag` ;
    `adjustments` : ce que les plafonds coupent (`subsidy_cap`)."""
    payload = body.model_dump(mode="json", exclude_none=True)

    def work(uow):
        plan = scoped_dossier(plan_id, actor, uow)
        outcome = pathways.open_aid_dossier(uow=uow, clock=clock, actor=actor, plan_id=plan.id,
                                            actions=payload["actions"], consulting=payload.get("consulting"),
                                            investment=payload.get("investment"))
        return 201, command_body(outcome), {"Location": f"/dossiers/{outcome.dossier_id}", "ETag": etag(outcome.version)}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock,
                   payload={"plan": plan_id, **payload}, work=work)


@router.get("/companies/{siren}/pathway", response_model=PathwayOut, responses=problem_responses(401, 403, 404, 422),
            summary="Le parcours d'une entreprise : ses dossiers, leur état, aides, prêts restant dus, de minimis")
def company_pathway(siren: Annotated[str, Path(pattern=r"^[0-9]{9}$")], request: Request,
                    actor: Annotated[Actor, Depends(require_roles(*READERS))],
                    uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Les dossiers que l'appelant voit (une entreprise : les siens ; les services : ceux des
    programmes de leur région), du plus ancien au plus récent. Le de minimis est celui de
    l'entreprise unique, toutes aides comptées (SPEC §11.4). 404 quand l'entreprise n'existe pas
    ou que l'appelant n'en voit aucun dossier."""
    on = paris_date(clock.now())
    with uow_factory() as uow:
        try:
            pathway = pathways.company_pathway(uow, siren, on=on)
        except InvalidInput:  # an unknown SIREN: the same 404 as a company out of scope
            raise Problem(404, "Entreprise introuvable.", rule="not_found") from None
        ids = [r["id"] for r in pathway["dossiers"]]
        visible = {d.id for d in uow.session.scalars(select(m.Dossier).where(m.Dossier.id.in_(ids)))
                   if in_scope(actor, d, uow.catalogue)} if ids else set()
    # Only the dossiers in the caller's scope; the de minimis stays the undertaking's, every aid counted.
    rows = [r for r in pathway["dossiers"] if r["id"] in visible]
    if not rows:
        raise Problem(404, "Entreprise introuvable.", rule="not_found")
    return {**pathway, "on": on.isoformat(), "dossiers": rows, **pathways.loan_totals(rows)}
