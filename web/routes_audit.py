"""The auditor's view: a dossier rebuilt from its events at a chosen instant
(`services.audit.replay.replay_dossier`, the rules re-computed on the way), with the integrity of
its hash chain (`services.audit.verify.verify_dossier`); and the integrity of every dossier of
the auditor's scope (`verify_database`). Read only."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from db import models as m
from rules.calendar import PARIS
from services.queries import history
from services.search import in_scope
from services.wording import describe
from web.app import PREFIX, render
from web.auth import Forbidden, WebUser, current_user
from web.dossier_view import dossier_or_404

router = APIRouter()


def _auditor(user: WebUser) -> None:
    if user.role != "auditor":
        raise Forbidden("La vue d'audit est réservée aux auditeurs.")


def parse_instant(raw: str | None) -> tuple[datetime | None, str | None]:
    """An instant from the form: `2022-03-01T10:00` (Paris wall time, from the date picker) or an
    ISO 8601 instant with offset (from the timeline's links). Returns (instant, error)."""
    if raw is None or not raw.strip():
        return None, None
    text = raw.strip().replace(" ", "+") if "T" in raw and raw.count(":") >= 2 else raw.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None, f"Instant « {raw} » illisible (champ « date et heure ») : date et heure attendues, par exemple 2022-03-01T10:00."
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value, None


def _engine(uow_factory, uow):
    return getattr(uow_factory, "engine", None) or uow.session.get_bind()


def _bound(e: dict) -> tuple[int, datetime, str]:
    return e["seq"], datetime.fromisoformat(e["at"]), e["command"]


@router.get("/audit")
def audit_home(request: Request, user: Annotated[WebUser, Depends(current_user)],
               verifier: Annotated[str | None, Query(max_length=3)] = None):
    _auditor(user)
    web = request.app.state.web
    report = None
    with web.uow_factory() as uow:
        if verifier:
            from services.audit.verify import verify_database

            full = verify_database(_engine(web.uow_factory, uow)).as_dict()
            rows = uow.session.scalars(select(m.Dossier)).all()
            visible = {d.id for d in rows if in_scope(user.actor, d, uow.catalogue)}
            existing = {d.id for d in rows}
            # An alarm about a dossier whose row is gone is shown to every auditor: it has no
            # region left to scope it by, and hiding it would hide the tampering.
            problems = [p for p in full["problems"] if p.get("dossier_id") is None or p["dossier_id"] in visible
                        or p["dossier_id"] not in existing]
            report = {"ok": not problems, "problems": problems, "dossiers": len(visible),
                      "events": full["events_checked"], "seconds": full["seconds"], "anchors": full["anchors"]}
    return render(request, "audit_home.html", title="Audit", report=report)


@router.get("/audit/rejouer")
def find_dossier(request: Request, user: Annotated[WebUser, Depends(current_user)],
                 reference: Annotated[str, Query(min_length=1, max_length=32)]):
    _auditor(user)
    web = request.app.state.web
    with web.uow_factory() as uow:
        d = uow.session.scalar(select(m.Dossier).where(m.Dossier.reference == reference.strip()))
        if d is None or not in_scope(user.actor, d, uow.catalogue):
            raise HTTPException(404, f"Dossier « {reference} » introuvable dans votre périmètre.")
        return RedirectResponse(f"{PREFIX}/audit/dossiers/{d.id}", status_code=303)


@router.get("/audit/dossiers/{dossier_id}")
def replay(request: Request, dossier_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
           user: Annotated[WebUser, Depends(current_user)],
           at: Annotated[str | None, Query(max_length=40)] = None):
    _auditor(user)
    from rules.errors import RuleViolation
    from services.audit.replay import (
        BEFORE_FIRST_EVENT,
        HistoryBounds,
        check_replay_request,
        diff,
        replay_dossier,
        stored_state,
    )
    from services.audit.verify import verify_dossier

    web = request.app.state.web
    instant, error = parse_instant(at)
    with web.uow_factory() as uow:
        d = dossier_or_404(uow, user.actor, dossier_id)
        events = history(uow, d.id)
        from services.people import display_names

        people = display_names(uow.session, [d.officer, *(e.get("actor") for e in events),
                                             *((e.get("data") or {}).get("officer") for e in events)])
        for e in events:
            e["text"] = describe(e, people)
            e["link"] = f"?at={quote(e['at'], safe='')}"
        integrity = verify_dossier(uow.session, d.id)
        bounds = HistoryBounds(_bound(events[0]) if events else None, _bound(events[-1]) if events else None)
        # The tables hold only the present: compare with them only when the instant shows it.
        compare = instant is None or (bounds.last is not None and instant >= bounds.last[1])
        not_yet = result = differences = None
        try:
            check_replay_request(bounds, reference=d.reference, at=instant, compare=compare)
        except RuleViolation as exc:
            if exc.rule != BEFORE_FIRST_EVENT:
                raise
            not_yet = exc.message
        if not_yet is None:
            result = replay_dossier(uow.session, d.id, at=instant, catalogue=uow.catalogue)
            if compare:
                differences = diff(result, stored_state(uow.session, d.id, catalogue=uow.catalogue, as_of=instant))
        applied_seq = result.last_event["seq"] if result is not None and result.last_event else 0
        return render(request, "audit_dossier.html", title=f"Audit {d.reference}", d=d, events=events, people=people,
                      replay=result, state=result.state if result is not None else None, instant=instant,
                      at_error=error, integrity=integrity, differences=differences, applied_seq=applied_seq,
                      not_yet=not_yet, first_at=events[0]["at"] if events else None)
