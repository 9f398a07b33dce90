"""Payment claims across dossiers: the finance department's (and the officers') worklist."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select

from api.deps import get_uow_factory, require_roles
from api.problems import problem_responses
from api.routes_dossiers import PAYMENT_READERS, claims_of
from api.schemas import ClaimPage
from db import models as m
from services.commands import Actor
from services.search import scope_clause

router = APIRouter(tags=["paiements"])


@router.get("/payment-claims", response_model=ClaimPage, responses=problem_responses(401, 403, 422),
            summary="Les demandes de paiement des dossiers visibles (ex. en attente, pour le service financier)")
def list_claims(actor: Annotated[Actor, Depends(require_roles(*PAYMENT_READERS))],
                uow_factory=Depends(get_uow_factory),
                status: Annotated[Literal["pending", "paid"] | None, Query()] = None,
                programme: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    with uow_factory() as uow:
        base = (select(m.PaymentClaim, m.Dossier.reference)
                .join(m.Dossier, m.PaymentClaim.dossier_id == m.Dossier.id)
                .join(m.Company, m.Dossier.company_id == m.Company.id)
                .where(scope_clause(actor, uow.catalogue)))
        if status:
            base = base.where(m.PaymentClaim.status == status)
        if programme:
            base = base.where(m.Dossier.programme_id == programme)
        total = uow.session.scalar(select(func.count()).select_from(base.with_only_columns(m.PaymentClaim.id).subquery()))
        rows = uow.session.execute(base.order_by(m.PaymentClaim.claimed_at, m.PaymentClaim.id)
                                   .limit(limit).offset(offset)).all()
        claims = [c for c, _ in rows]
        references = {c.dossier_id: ref for c, ref in rows}
        items = claims_of(uow.session, sorted(references), references, claims)
    return {"items": items, "total": total, "limit": limit, "offset": offset}
