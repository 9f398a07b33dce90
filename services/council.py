"""The council calendar: the head of service plans a session ahead (`plan_session`, one unit of
work). Proposals then go to that session and its votes wait for its day (`rules.council`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from db import models as m
from rules.calendar import paris_date
from rules.council import check_session_plan
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.text import check_text
from services.clock import Clock
from services.commands import Actor
from services.commands.base import _commit
from services.uow import UnitOfWork

PLANNERS = ("head",)


@dataclass(frozen=True)
class PlannedSession:
    code: str
    programme_id: str
    session_date: date
    agenda_closes_on: date
    planned_by: str


def _day(raw, field: str, label: str) -> date:
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise InvalidInput(field, f"{label} : une date est attendue (jj/mm/aaaa).")


def plan_session(*, uow: UnitOfWork, clock: Clock, actor: Actor, code: str, programme_id: str,
                 session_date, agenda_closes_on) -> PlannedSession:
    """The head plans a session of one of its region's programmes: a code not yet used, a date
    ahead on a working day, the agenda closing before it. Refused with the rule and the field,
    nothing written."""
    if actor.role not in PLANNERS:
        raise NotAllowed("Seul(e) le ou la chef(fe) de service planifie les séances du conseil.")
    if not isinstance(code, str) or not code.strip() or len(code.strip()) > 64 or "/" in code:
        raise InvalidInput("code", "Code de la séance : un code de 64 caractères au plus, sans « / », est attendu.")
    code = check_text(code, "code").strip()
    try:
        programme = uow.catalogue.latest(programme_id) if isinstance(programme_id, str) and programme_id else None
    except InvalidInput:
        programme = None
    if programme is None or (actor.regions is not None and programme.region not in actor.regions):
        raise InvalidInput("programme_id", "Programme : choisissez un programme de votre région.")
    day = _day(session_date, "session_date", "Date de la séance")
    closes = _day(agenda_closes_on, "agenda_closes_on", "Clôture de l'ordre du jour")
    now = clock.now()
    check_session_plan(day, closes, paris_date(now))
    if uow.session.scalar(select(m.CouncilSession.id).where(m.CouncilSession.code == code)) is not None:
        raise RuleViolation("session_code_taken", f"Code de la séance : « {code} » est déjà celui d'une séance.",
                            field="code")
    uow.session.add(m.CouncilSession(code=code, programme_id=programme.id, session_date=day,
                                     agenda_closes_on=closes, created_at=now, planned_by=actor.name))
    _commit(uow)
    return PlannedSession(code, programme.id, day, closes, actor.name)
