"""Companies: those with at least one dossier in the caller's scope."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import get_uow_factory, require_roles
from api.problems import Problem, problem_responses
from api.schemas import CompanyOut, CompanyPage
from services.commands import Actor
from services.search import companies_in_scope, company_in_scope

router = APIRouter(tags=["entreprises"])
DOSSIER_READERS = ("applicant", "consultant", "officer", "head", "finance", "auditor")


@router.get("/companies", response_model=CompanyPage, responses=problem_responses(401, 403, 422),
            summary="Les entreprises dont l'appelant voit au moins un dossier")
def list_companies(actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                   uow_factory=Depends(get_uow_factory),
                   q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$", description="Raison sociale ou SIREN (extrait)")] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    with uow_factory() as uow:
        return companies_in_scope(uow, actor, q=q, limit=limit, offset=offset)


@router.get("/companies/{siren}", response_model=CompanyOut, responses=problem_responses(401, 403, 404, 422),
            summary="Une entreprise et ses dossiers visibles par l'appelant")
def get_company(siren: Annotated[str, Path(pattern=r"^[0-9]{9}$")],
                actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                uow_factory=Depends(get_uow_factory)):
    """404 quand l'entreprise n'existe pas *ou* que l'appelant n'en voit aucun dossier."""
    with uow_factory() as uow:
        company = company_in_scope(uow, actor, siren)
    if company is None:
        raise Problem(404, "Entreprise introuvable.", rule="not_found")
    return company
