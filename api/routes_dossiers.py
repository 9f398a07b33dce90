"""Dossiers: search, detail (ETag = version), new candidacy, event history, payment claims."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from api.deps import etag, get_clock, get_uow_factory, require_roles, scoped_dossier
from api.idempotency import execute
from api.problems import Problem, problem_responses
from api.schemas import CandidacyIn, ClaimOut, CommandOut, DossierOut, DossierPage, EventOut
from db import models as m
from programmes import EXAMPLE_NOTICE
from rules.errors import InvalidInput
from rules.identifiers import InvalidIdentifier, validate_siren
from services import commands
from services.commands import Actor
from services.loans import loan_figures
from services.messages import visible_events
from services.queries import dossier_summary, history
from services.search import SORTS, DossierQuery, search_dossiers
from services.wording import describe
from states.lifecycle import STATE_LABELS, STATES, allowed_triggers

router = APIRouter(tags=["dossiers"])
DOSSIER_READERS = ("applicant", "consultant", "officer", "head", "finance", "auditor")
DossierId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Identifiant du dossier")]
SortKey = Literal[tuple(k for key in SORTS for k in (key, f"-{key}"))]  # type: ignore[valid-type]
State = Literal[STATES]  # type: ignore[valid-type]

_COMMAND_OF_TRIGGER = {"vote_approved": "record_vote", "vote_rejected": "record_vote", "vote_adjourned": "record_vote"}
# Fired by the sweep, or by another command (a repayment bringing a loan up to date cures the
# default), or by the retention run (RGPD): never sent as such.
_SYSTEM_TRIGGERS = {"remind", "lapse", "close", "remind_repayment", "declare_default", "cure_default", "anonymise"}


def allowed_commands(state: str, role: str, shape: str | None = None) -> list[str]:
    """The commands this role may try from this state on a dossier of this line shape (the
    guards still decide)."""
    out: list[str] = []
    for trigger in allowed_triggers(state, role, shape):
        if trigger in _SYSTEM_TRIGGERS:
            continue
        name = _COMMAND_OF_TRIGGER.get(trigger, trigger)
        if name not in out:
            out.append(name)
    return out


def command_body(outcome: commands.Outcome) -> dict:
    from fastapi.encoders import jsonable_encoder

    return {"dossier_id": outcome.dossier_id, "reference": outcome.reference, "state": outcome.state,
            "state_label": STATE_LABELS[outcome.state], "version": outcome.version,
            "adjustments": jsonable_encoder(outcome.adjustments), "details": jsonable_encoder(outcome.details)}


def dossier_detail(uow, dossier: m.Dossier, actor: Actor) -> dict:
    out = dossier_summary(uow, dossier.id)
    programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
    region, line = programme.region, programme.line(dossier.line)
    linked = {d.id: d.reference for d in uow.session.scalars(
        select(m.Dossier).where(m.Dossier.id.in_([i for i in (dossier.cites_id, dossier.plan_id) if i])))}
    requests = uow.session.scalars(select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == dossier.id)
                                   .order_by(m.DocumentRequest.id)).all()
    out.update(
        programme=dossier.programme_id, programme_version=dossier.programme_version, region=region,
        quotes=dossier.quotes or {},
        document_requests=[{"id": r.id, "kinds": list(r.kinds), "requested_by": r.requested_by,
                            "requested_on": r.requested_on.isoformat(), "lapse_on": r.lapse_on.isoformat(),
                            "status": r.status} for r in requests],
        allowed_commands=allowed_commands(dossier.status, actor.role, line.shape),
        line=dossier.line, line_name=line.name, call=dossier.call_code, example=programme.is_example,
        example_notice=EXAMPLE_NOTICE if programme.is_example else None,
        cites=linked.get(dossier.cites_id), plan=linked.get(dossier.plan_id), actions=dossier.actions,
        loan=loan_figures(uow.session, dossier),
        written_off=None if dossier.written_off is None else str(dossier.written_off),
    )
    return out


@router.get("/dossiers", response_model=DossierPage, responses=problem_responses(401, 403, 422),
            summary="Chercher des dossiers (dans le périmètre de l'appelant)")
def list_dossiers(actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                  uow_factory=Depends(get_uow_factory),
                  state: Annotated[State | None, Query(description="État du dossier")] = None,
                  programme: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$", description="Identifiant du programme")] = None,
                  officer: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$", description="Chargé(e) de mission ; « me » : soi-même")] = None,
                  deadline_before: Annotated[date | None, Query(description="Échéance en cours au plus tard ce jour (caducité d'une demande de pièces, délai de paiement)")] = None,
                  q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$", description="Texte cherché : référence, raison sociale, SIREN, prestataire, chargé(e)")] = None,
                  call: Annotated[str | None, Query(max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$", description="Appel (AMI) de la candidature, ex. AMI-2020-2")] = None,
                  line: Annotated[int | None, Query(ge=1, le=9, description="Ligne d'aide du programme")] = None,
                  sort: Annotated[SortKey, Query(description="Tri ; préfixe « - » : décroissant")] = "-updated_at",
                  limit: Annotated[int, Query(ge=1, le=200)] = 50,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                  cursor: Annotated[str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_-]*$", description="Curseur de page (`next_cursor` ou `prev_cursor` d'une réponse, même tri) ; remplace `offset`")] = None):
    if officer == "me":
        officer = actor.name
    query = DossierQuery(state=state, programme=programme, officer=officer, deadline_before=deadline_before,
                         q=q, call=call, line=line, sort=sort, limit=limit, offset=offset, cursor=cursor or None)
    with uow_factory() as uow:
        return search_dossiers(uow, actor, query)


@router.get("/dossiers/{dossier_id}", response_model=DossierOut, responses={
    **problem_responses(401, 403, 404, 422), 304: {"description": "Inchangé depuis la version indiquée par If-None-Match"}},
    summary="Un dossier : état, montants, pièces demandées, commandes possibles (ETag = version)")
def get_dossier(dossier_id: DossierId, request: Request, response: Response,
                actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        dossier = scoped_dossier(dossier_id, actor, uow)
        tag = etag(dossier.version)
        inm = request.headers.get("if-none-match")
        if inm and tag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
            return Response(status_code=304, headers={"ETag": tag})
        body = dossier_detail(uow, dossier, actor)
    response.headers["ETag"] = tag
    return body


@router.post("/dossiers", status_code=201, response_model=CommandOut,
             responses=problem_responses(401, 403, 409, 422),
             summary="Déposer une candidature (entreprise), ou en enregistrer le brouillon")
def create_dossier(request: Request, body: Annotated[CandidacyIn, Body()],
                   actor: Annotated[Actor, Depends(require_roles("applicant"))],
                   uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """La candidature est déposée dans une fenêtre ouverte du programme (règle `window_closed`
    sinon). Une entreprise ne dépose que pour son propre SIREN. Réponse 201, `Location` et `ETag`."""
    payload = body.model_dump(mode="json", exclude_none=True)
    # The number first (422 siren_format / siren_checksum, as for any malformed input), then
    # whose it is (403): a mistyped SIREN is a typing mistake, not somebody else's company.
    try:
        siren = validate_siren(body.company.siren)
    except InvalidIdentifier as exc:
        raise InvalidInput("company.siren", exc.message, rule=exc.rule) from None
    if siren != actor.siren:
        raise Problem(403, "Vous ne pouvez déposer une candidature que pour votre entreprise.",
                      rule="not_allowed", field="company.siren")

    def work(uow):
        args = dict(uow=uow, clock=clock, actor=actor, programme_id=body.programme, company=payload["company"],
                    de_minimis_prior=payload.get("de_minimis_prior", []), documents=payload.get("documents"),
                    line=body.line, cites=body.cites)
        outcome = commands.submit_candidacy(**args) if body.submit else commands.start_candidacy(**args)
        return 201, command_body(outcome), {"Location": f"/dossiers/{outcome.dossier_id}", "ETag": etag(outcome.version)}

    return execute(request, actor=actor, uow_factory=uow_factory, clock=clock, payload=payload, work=work)


@router.get("/dossiers/{dossier_id}/events", response_model=list[EventOut], responses=problem_responses(401, 403, 404, 422),
            summary="L'historique du dossier : ses événements, du plus ancien au plus récent")
def dossier_events(dossier_id: DossierId, actor: Annotated[Actor, Depends(require_roles(*DOSSIER_READERS))],
                   uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        did = scoped_dossier(dossier_id, actor, uow).id
        events = visible_events(history(uow, did), actor)  # no agents' note to the company
    return [{**e, "data": e["data"] or {}, "description": describe(e)} for e in events]


def claim_view(claim: m.PaymentClaim, reference: str, payments, recoveries) -> dict:
    return {
        "id": claim.id, "dossier_id": claim.dossier_id, "dossier_reference": reference, "phase": claim.phase,
        "kind": claim.kind, "status": claim.status, "amount_claimed": str(claim.amount_claimed),
        "invoices": list(claim.invoices or []), "assessment": claim.assessment,
        "claimed_at": claim.claimed_at.isoformat(), "paid_at": claim.paid_at.isoformat() if claim.paid_at else None,
        "payments": [{"id": p.id, "kind": p.kind, "amount": str(p.amount), "paid_at": p.paid_at.isoformat()}
                     for p in payments if p.claim_id == claim.id],
        "recovery_orders": [{"id": r.id, "amount": str(r.amount), "issued_at": r.issued_at.isoformat()}
                            for r in recoveries if r.claim_id == claim.id],
    }


def claims_of(session, dossier_ids: list[int], references: dict[int, str], claims) -> list[dict]:
    payments = session.scalars(select(m.Payment).where(m.Payment.dossier_id.in_(dossier_ids))).all() if dossier_ids else []
    recoveries = session.scalars(select(m.RecoveryOrder).where(m.RecoveryOrder.dossier_id.in_(dossier_ids))).all() if dossier_ids else []
    return [claim_view(c, references[c.dossier_id], payments, recoveries) for c in claims]


PAYMENT_READERS = ("applicant", "officer", "head", "finance", "auditor")


@router.get("/dossiers/{dossier_id}/payment-claims", response_model=list[ClaimOut],
            responses=problem_responses(401, 403, 404, 422),
            summary="Les demandes de paiement d'un dossier, avec paiements et ordres de reversement")
def dossier_claims(dossier_id: DossierId, actor: Annotated[Actor, Depends(require_roles(*PAYMENT_READERS))],
                   uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        dossier = scoped_dossier(dossier_id, actor, uow)
        claims = uow.session.scalars(select(m.PaymentClaim).where(m.PaymentClaim.dossier_id == dossier.id)
                                     .order_by(m.PaymentClaim.id)).all()
        return claims_of(uow.session, [dossier.id], {dossier.id: dossier.reference}, claims)
