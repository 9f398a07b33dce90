"""The work queue: the dossiers of the user's scope (`services.search.scope_clause`), filtered,
deadlines soonest first, with the count of each state.

A dossier's next deadline is the soonest of:
- the lapse day of an open document request (the dossier lapses if the pieces do not come);
- for a dossier in `action_plan`, the next agenda closing of its programme's council sessions
  (it must be ready_for_vote before it); for one in `ready_for_vote`, its session's day;
- for a dossier `approved` or `in_payment`, the payment deadline (the balance must be claimed).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, literal, select

from db import models as m
from services.commands import Actor
from services.search import dossier_row, escape_like, scope_clause
from states.lifecycle import STATES

PAGE_SIZE = 50
DEADLINE_KINDS = {
    "documents": "caducité si les pièces demandées ne sont pas remises",
    "agenda": "clôture de l'ordre du jour de la prochaine séance",
    "session": "séance du conseil",
    "payment": "date limite de demande du solde",
}


@dataclass(frozen=True)
class QueueFilters:
    state: str | None = None
    programme: str | None = None
    q: str | None = None
    mine: bool = False
    due_before: date | None = None
    open_only: bool = True
    page: int = 1
    call: str | None = None   # a call's code (SPEC §11.1)
    line: int | None = None   # an aid line's number (SPEC §11.2)


def _least(*exprs):
    """The smallest non-null of the expressions, portable (SQLite's min() and PostgreSQL's
    LEAST() treat NULL differently)."""
    out = exprs[0]
    for e in exprs[1:]:
        out = case((out.is_(None), e), (e.is_(None), out), (e < out, e), else_=out)
    return out


def _deadline_columns(today: date):
    request_due = (select(func.min(m.DocumentRequest.lapse_on))
                   .where(m.DocumentRequest.dossier_id == m.Dossier.id, m.DocumentRequest.status == "open")
                   .correlate(m.Dossier).scalar_subquery())
    next_agenda = (select(func.min(m.CouncilSession.agenda_closes_on))
                   .where(m.CouncilSession.programme_id == m.Dossier.programme_id,
                          m.CouncilSession.agenda_closes_on >= today)
                   .correlate(m.Dossier).scalar_subquery())
    own_session = (select(m.CouncilSession.session_date).where(m.CouncilSession.id == m.Dossier.session_id)
                   .correlate(m.Dossier).scalar_subquery())
    agenda_due = case((m.Dossier.status == "action_plan", next_agenda), else_=None)
    session_due = case((m.Dossier.status == "ready_for_vote", own_session), else_=None)
    payment_due = case((m.Dossier.status.in_(("approved", "in_payment")), m.Dossier.payment_deadline_on), else_=None)
    return request_due, agenda_due, session_due, payment_due


def _where(actor: Actor, catalogue, f: QueueFilters, today: date) -> list:
    where = [scope_clause(actor, catalogue)]
    if f.state:
        if f.state not in STATES:
            raise ValueError("state")
        where.append(m.Dossier.status == f.state)
    elif f.open_only:
        where.append(m.Dossier.status.notin_(("closed", "rejected", "withdrawn", "lapsed")))
    if f.programme:
        where.append(m.Dossier.programme_id == f.programme)
    if f.call:
        where.append(m.Dossier.call_code == f.call)
    if f.line is not None:
        where.append(m.Dossier.line == f.line)
    if f.mine:
        where.append(m.Dossier.officer == actor.name)
    if f.q:
        needle = f"%{escape_like(f.q.strip().lower())}%"
        where.append(func.lower(m.Dossier.reference).like(needle, escape="\\")
                     | func.lower(m.Company.name).like(needle, escape="\\")
                     | m.Company.siren.like(needle, escape="\\")
                     | func.lower(func.coalesce(m.Dossier.consultant, "")).like(needle, escape="\\")
                     | func.lower(func.coalesce(m.Dossier.officer, "")).like(needle, escape="\\"))
    return where


def work_queue(uow, actor: Actor, f: QueueFilters, today: date) -> dict:
    """One page of the queue, deadlines soonest first (then the oldest submission first)."""
    request_due, agenda_due, session_due, payment_due = _deadline_columns(today)
    where = _where(actor, uow.catalogue, f, today)
    # The four deadlines once per dossier (a derived table), then the soonest of them.
    dues = (select(m.Dossier.id.label("id"), request_due.label("documents"), agenda_due.label("agenda"),
                   session_due.label("session"), payment_due.label("payment"))
            .join(m.Company, m.Dossier.company_id == m.Company.id).where(*where).subquery("dues"))
    soonest = _least(dues.c.documents, dues.c.agenda, dues.c.session, dues.c.payment)
    base = select(m.Dossier).join(dues, dues.c.id == m.Dossier.id)
    if f.due_before is not None:
        base = base.where(soonest.is_not(None), soonest <= f.due_before)
    total = uow.session.scalar(select(func.count()).select_from(base.with_only_columns(m.Dossier.id).subquery()))
    page = max(1, f.page)
    rows = uow.session.execute(
        base.add_columns(dues.c.documents, dues.c.agenda, dues.c.session, dues.c.payment)
        .order_by(case((soonest.is_(None), literal(1)), else_=literal(0)), soonest, m.Dossier.submitted_at,
                  m.Dossier.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    items = []
    for d, *values in rows:
        row = dossier_row(d, uow.catalogue)
        row["call"] = d.call_code
        programme = uow.catalogue.get(d.programme_id, d.programme_version)
        row["line"] = (f"{d.line} — {programme.line(d.line).name}"
                       if d.line and len(programme.dossier_lines) > 1 else None)
        row["siren"] = d.company_facts.get("siren")
        candidates = [(_as_date(v), kind) for v, kind in zip(values, ("documents", "agenda", "session", "payment"))
                      if v is not None]
        if candidates:
            due, kind = min(candidates)
            row["deadline"] = {"on": due, "kind": kind, "label": DEADLINE_KINDS[kind], "days_left": (due - today).days}
        else:
            row["deadline"] = None
        items.append(row)
    return {"items": items, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE))}


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def counts_by_state(uow, actor: Actor) -> dict[str, int]:
    rows = uow.session.execute(
        select(m.Dossier.status, func.count()).join(m.Company, m.Dossier.company_id == m.Company.id)
        .where(scope_clause(actor, uow.catalogue)).group_by(m.Dossier.status)).all()
    found = dict(rows)
    return {s: found[s] for s in STATES if s in found}


def programmes_in_scope(actor: Actor, catalogue) -> list:
    if actor.regions is None:
        return [p for p in catalogue.all()] if actor.role in ("applicant", "consultant") else []
    return [p for p in catalogue.all() if p.region in actor.regions]
