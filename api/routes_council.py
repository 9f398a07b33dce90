"""Council sessions (commissions permanentes): their agenda, and the bulk vote of a session —
one `record_vote` per dossier, each in its own unit of work, each with its own result."""
from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.orm.exc import StaleDataError

from api.deps import get_clock, get_uow_factory, require_roles, scoped_dossier
from api.idempotency import Idempotency, _stale_write
from api.problems import Problem, problem_response, problem_responses, response_for_exception
from api.routes_dossiers import command_body
from api.schemas import AgendaOut, BulkVoteIn, BulkVoteOut, CouncilSessionOut, PlanSessionIn
from db import models as m
from rules.errors import ConcurrencyConflict, NotFound, RuleViolation
from services import commands, council
from services.commands import Actor
from services.search import dossier_row, programme_in_scope, scope_clause

router = APIRouter(tags=["séances"])
SESSION_READERS = ("officer", "head", "finance", "auditor")
SessionCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$", description="Code de la séance (ex. CP-2021-04)")]


def _session_view(s: m.CouncilSession, count: int) -> dict:
    return {"code": s.code, "programme": s.programme_id, "session_date": s.session_date.isoformat(),
            "agenda_closes_on": s.agenda_closes_on.isoformat(), "dossiers": count}


def _scoped_session(uow, code: str, actor: Actor) -> m.CouncilSession:
    s = uow.session.scalar(select(m.CouncilSession).where(m.CouncilSession.code == code))
    if s is None or not programme_in_scope(actor, s.programme_id, uow.catalogue):
        raise Problem(404, "Séance introuvable.", rule="not_found")
    return s


@router.get("/council-sessions", response_model=list[CouncilSessionOut], responses=problem_responses(401, 403),
            summary="Les séances des programmes de l'appelant")
def list_sessions(actor: Annotated[Actor, Depends(require_roles(*SESSION_READERS))],
                  uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        sessions = uow.session.scalars(select(m.CouncilSession).order_by(m.CouncilSession.session_date,
                                                                         m.CouncilSession.code)).all()
        visible = [s for s in sessions if programme_in_scope(actor, s.programme_id, uow.catalogue)]
        counts = dict(uow.session.execute(select(m.Dossier.session_id, func.count()).where(
            m.Dossier.session_id.in_([s.id for s in visible])).group_by(m.Dossier.session_id)).all()) if visible else {}
        return [_session_view(s, counts.get(s.id, 0)) for s in visible]


@router.post("/council-sessions", status_code=201, response_model=CouncilSessionOut,
             responses=problem_responses(401, 403, 422),
             summary="Planifier une séance (chef(fe) de service) : un jour ouvré à venir, l'ordre du jour clos avant")
def plan_session(body: PlanSessionIn, actor: Annotated[Actor, Depends(require_roles("head"))],
                 uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    with uow_factory() as uow:
        council.plan_session(uow=uow, clock=clock, actor=actor, code=body.code, programme_id=body.programme,
                             session_date=body.session_date, agenda_closes_on=body.agenda_closes_on)
    with uow_factory() as uow:
        return _session_view(_scoped_session(uow, body.code, actor), 0)


@router.get("/council-sessions/{code}", response_model=AgendaOut, responses=problem_responses(401, 403, 404, 422),
            summary="L'ordre du jour d'une séance : ses dossiers, avec leur état")
def agenda(code: SessionCode, actor: Annotated[Actor, Depends(require_roles(*SESSION_READERS))],
           uow_factory=Depends(get_uow_factory)):
    with uow_factory() as uow:
        s = _scoped_session(uow, code, actor)
        dossiers = uow.session.scalars(
            select(m.Dossier).join(m.Company, m.Dossier.company_id == m.Company.id)
            .where(m.Dossier.session_id == s.id, scope_clause(actor, uow.catalogue))
            .order_by(m.Dossier.reference)).all()
        return {"session": _session_view(s, len(dossiers)), "items": [dossier_row(d, uow.catalogue) for d in dossiers]}


def _refusal(exc: Exception, request: Request) -> tuple[int, dict]:
    response = response_for_exception(exc, request)
    body = json.loads(response.body)
    body.pop("instance", None)
    return response.status_code, body


def _stored_vote(session, idem: Idempotency) -> dict | None | bool:
    """The result a vote's key holds; False when the key was taken by another request."""
    row = idem._find(session)
    if row is None or row.status_code is None:
        return None
    if row.fingerprint != idem.fingerprint:
        return False
    return json.loads(row.body)


def _vote(request: Request, code: str, item, actor: Actor, uow_factory, clock, idem: Idempotency | None) -> dict | None:
    """One vote of a bulk vote, in its own unit of work. Under a key, the vote's own key (the
    request's key and the vote's rank) holds its result, written in the vote's transaction: a
    bulk vote retried after a crash is answered, vote by vote, from what committed, and runs
    the votes that did not."""
    try:
        with uow_factory() as uow:
            if idem is not None:
                stored = _stored_vote(uow.session, idem)
                if stored is False:
                    return None
                if stored is not None:
                    return stored
                idem.reserve(uow.session)
                uow.hold_commit()
            dossier = scoped_dossier(item.dossier_id, actor, uow)
            outcome = commands.record_vote(uow=uow, clock=clock, actor=actor, dossier_id=dossier.id, session=code,
                                           outcome=item.outcome, deliberation=item.deliberation,
                                           expected_version=item.expected_version)
            out = command_body(outcome)
            result = {"dossier_id": item.dossier_id, "ok": True, "status": 200, "state": out["state"],
                      "version": out["version"], "adjustments": out["adjustments"]}
            if idem is not None:
                idem.complete(JSONResponse(result))
                uow.commit_held()
            return result
    except IntegrityError:
        if idem is None:
            raise
        with uow_factory() as uow:  # a concurrent duplicate took this vote's key first
            stored = _stored_vote(uow.session, idem)
        if stored is False:
            return None
        if stored is not None:
            return stored
        return _conflict(item)
    except (RuleViolation, ConcurrencyConflict, NotFound, Problem) as exc:
        status, refused = _refusal(exc, request)
        result = {"dossier_id": item.dossier_id, "ok": False, "status": status, "refused": refused}
        if idem is not None and status != 409:
            idem.record(uow_factory, JSONResponse(result))
        return result
    except (StaleDataError, PendingRollbackError) as exc:
        if not _stale_write(exc):
            raise
        return _conflict(item)


def _conflict(item) -> dict:
    return {"dossier_id": item.dossier_id, "ok": False, "status": 409, "refused": {
        "type": "/problems/conflict", "title": "Version périmée", "status": 409, "rule": "conflict",
        "field": None, "detail": "Le dossier a été modifié en même temps par une autre requête."}}


@router.post("/council-sessions/{code}/votes", response_model=BulkVoteOut,
             responses=problem_responses(401, 403, 404, 409, 422),
             summary="Voter une séance : un vote par dossier, chacun appliqué ou refusé pour lui-même")
def bulk_vote(request: Request, code: SessionCode, body: Annotated[BulkVoteIn, Body()],
              actor: Annotated[Actor, Depends(require_roles("head"))],
              uow_factory=Depends(get_uow_factory), clock=Depends(get_clock)):
    """Chaque vote est une unité de travail : un refus (règle, version, dossier hors périmètre)
    n'empêche pas les autres. Le résultat donne, dossier par dossier, l'état atteint ou la règle
    qui a refusé. Avec `Idempotency-Key`, un envoi rejoué renvoie le résultat du premier."""
    payload = body.model_dump(mode="json")
    idem = Idempotency.from_request(request, actor, payload, clock)
    if idem is not None:
        replayed = idem.replay(uow_factory, request)
        if replayed is not None:
            return replayed
    # A session the head does not see is not found (the votes on it are never attempted).
    # A session not yet known is the one an adjourned dossier is carried to: record_vote decides.
    with uow_factory() as uow:
        s = uow.session.scalar(select(m.CouncilSession).where(m.CouncilSession.code == code))
        if s is not None and not programme_in_scope(actor, s.programme_id, uow.catalogue):
            raise Problem(404, "Séance introuvable.", rule="not_found")
    results = []
    for index, item in enumerate(body.votes):
        result = _vote(request, code, item, actor, uow_factory, clock, idem.item(index) if idem is not None else None)
        if result is None:  # the key already holds the votes of another request
            return problem_response(422, f"La clé « {idem.key} » a déjà servi pour une autre requête sur cette ressource.",
                                    request=request, rule="idempotency_key_reused", field="Idempotency-Key")
        results.append(result)
    applied = sum(1 for r in results if r["ok"])
    response = JSONResponse({"session": code, "applied": applied, "refused": len(results) - applied,
                             "results": results})
    if idem is not None:
        idem.record(uow_factory, response)
    return response
