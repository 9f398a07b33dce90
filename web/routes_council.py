"""Council sessions: their agenda, and the bulk vote — one `record_vote` per dossier, each its own
unit of work, each with its own result (a refusal does not stop the others)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from db import models as m
from rules import french
from rules.calendar import paris_date
from rules.errors import RuleViolation
from services import commands, council
from services.search import programme_in_scope
from web.app import PREFIX, render
from web.auth import Forbidden, WebUser, current_user, flash, writer
from web.format import STATE_LABELS
from web.routes_dossier import refusal_text, run_command

router = APIRouter()
SESSION_READERS = ("officer", "head", "finance", "auditor")
SessionCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f/]*$")]


def _readers(user: WebUser) -> None:
    if user.role not in SESSION_READERS:
        raise Forbidden("Les séances sont consultées par les chargé(e)s de mission, chef(fe)s de service, "
                        "services financiers et auditeurs.")


def session_view(s: m.CouncilSession, catalogue=None) -> SimpleNamespace:
    """What the pages show of a session (read while the unit of work is open): the programme by
    its name, never its id."""
    name, example = s.programme_id, False
    if catalogue is not None:
        try:
            programme = catalogue.latest(s.programme_id)
            name, example = programme.name, programme.is_example
        except RuleViolation:
            pass
    return SimpleNamespace(id=s.id, code=s.code, programme_id=s.programme_id, programme_name=name,
                           session_date=s.session_date, agenda_closes_on=s.agenda_closes_on, example=example)


def _scoped_session(uow, code: str, user: WebUser) -> m.CouncilSession:
    s = uow.session.scalar(select(m.CouncilSession).where(m.CouncilSession.code == code))
    if s is None or not programme_in_scope(user.actor, s.programme_id, uow.catalogue):
        raise HTTPException(404, "Séance introuvable.")
    return s


PLAN_FIELDS = ("code", "programme_id", "session_date", "agenda_closes_on")


def _sessions_page(request: Request, user: WebUser, *, plan_error: str | None = None,
                   plan_values: dict | None = None, status: int = 200):
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        rows = uow.session.scalars(select(m.CouncilSession).order_by(m.CouncilSession.session_date.desc(),
                                                                     m.CouncilSession.code)).all()
        visible = [s for s in rows if programme_in_scope(user.actor, s.programme_id, uow.catalogue)]
        counts = {}
        if visible:
            for sid, status_, n in uow.session.execute(
                    select(m.Dossier.session_id, m.Dossier.status, func.count())
                    .where(m.Dossier.session_id.in_([s.id for s in visible]))
                    .group_by(m.Dossier.session_id, m.Dossier.status)):
                counts.setdefault(sid, {})[status_] = n
        items = [{"s": session_view(s, uow.catalogue), "total": sum(counts.get(s.id, {}).values()),
                  "to_vote": counts.get(s.id, {}).get("ready_for_vote", 0), "planned": s.planned_by is not None,
                  "upcoming": s.session_date >= today, "agenda_open": s.agenda_closes_on >= today} for s in visible]
        # The programmes the head may plan a session for: the latest version of each of its scope.
        programmes = {}
        if user.role in council.PLANNERS:
            for p in uow.catalogue.all():
                if user.actor.regions is None or p.region in user.actor.regions:
                    programmes[p.id] = p.name
    return render(request, "sessions.html", title="Séances", items=items, today=today, status=status,
                  programmes=sorted(programmes.items(), key=lambda kv: kv[1]),
                  plan_error=plan_error, plan_values=plan_values or {},
                  example_rows=any(i["s"].example for i in items))


@router.get("/seances")
def sessions(request: Request, user: Annotated[WebUser, Depends(current_user)]):
    _readers(user)
    return _sessions_page(request, user)


@router.post("/seances")
async def plan(request: Request, user: Annotated[WebUser, Depends(writer)]):
    """The head plans a session ahead (`services.council.plan_session`). A refusal is shown
    beside the form (422), the form keeping what was typed; nothing is written."""
    _readers(user)
    if user.role not in council.PLANNERS:
        raise Forbidden("Seul(e) le ou la chef(fe) de service planifie les séances du conseil.")
    form = await request.form()
    values = {k: (form.get(k) or "").strip() if isinstance(form.get(k), str) else "" for k in PLAN_FIELDS}
    web = request.app.state.web

    def work():
        with web.uow_factory() as uow:
            return council.plan_session(uow=uow, clock=web.clock, actor=user.actor, code=values["code"],
                                        programme_id=values["programme_id"], session_date=values["session_date"],
                                        agenda_closes_on=values["agenda_closes_on"])
    try:
        planned = await run_in_threadpool(work)
    except RuleViolation as exc:
        return _sessions_page(request, user, plan_error=refusal_text(exc), plan_values=values, status=422)
    flash(request, "success", f"Séance {planned.code} planifiée le {french.day(planned.session_date)} ; "
                              f"ordre du jour ouvert jusqu'au {french.day(planned.agenda_closes_on)}.")
    return RedirectResponse(f"{PREFIX}/seances", status_code=303)


def _agenda(uow, s, user: WebUser) -> list[dict]:
    from services.council_documents import agenda_rows

    return agenda_rows(uow, s, user.actor)


@router.get("/seances/{code}")
def agenda(request: Request, code: SessionCode, user: Annotated[WebUser, Depends(current_user)]):
    _readers(user)
    web = request.app.state.web
    with web.uow_factory() as uow:
        s = session_view(_scoped_session(uow, code, user), uow.catalogue)
        items = _agenda(uow, s, user)
    return render(request, "agenda.html", title=f"Séance {s.code}", s=s, items=items, results=None, example=s.example,
                  can_vote=user.role == "head", today=paris_date(web.clock.now()))


@router.post("/seances/{code}/votes")
async def bulk_vote(request: Request, code: SessionCode, user: Annotated[WebUser, Depends(writer)]):
    """The head's votes of a session: for each dossier with a decision, one `record_vote`."""
    if user.role != "head":
        raise Forbidden("Seul(e) le ou la chef(fe) de service enregistre les votes d'une séance.")
    form = await request.form()
    web = request.app.state.web

    def work():
        with web.uow_factory() as uow:
            s = session_view(_scoped_session(uow, code, user), uow.catalogue)
            agenda_rows = _agenda(uow, s, user)
        results = []
        for row in agenda_rows:
            did = row["id"]
            outcome = form.get(f"outcome_{did}")
            if not outcome:
                continue
            deliberation = (form.get(f"deliberation_{did}") or "").strip() or None
            raw_version = form.get(f"version_{did}") or ""
            version = int(raw_version) if raw_version.isdigit() else None
            out, refused = run_command(web, user, did, commands.record_vote,
                                       {"session": code, "outcome": outcome, "deliberation": deliberation}, version)
            results.append({"id": did, "reference": row["reference"], "company": row["company"], "outcome": outcome,
                            "deliberation": deliberation, "ok": refused is None,
                            "state": STATE_LABELS.get(out.state, out.state) if out else None,
                            "aid": (out.details.get("aid") or {}).get("total") if out else None,
                            "refused": refused})
        with web.uow_factory() as uow:
            s = session_view(_scoped_session(uow, code, user), uow.catalogue)
            items = _agenda(uow, s, user)
        return s, items, results

    s, items, results = await run_in_threadpool(work)
    return render(request, "agenda.html", title=f"Séance {s.code} — votes", s=s, items=items, results=results,
                  example=s.example,
                  can_vote=True, today=paris_date(web.clock.now()))

