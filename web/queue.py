"""The work queue: the dossiers of the user's scope (`services.search.scope_clause`), filtered,
deadlines soonest first, with the count of each state.

A dossier's next deadline, stored on it by the write path (`services.deadlines`), is the soonest of:
- the lapse day of an open document request (the dossier lapses if the pieces do not come);
- for a dossier in `action_plan`, the next agenda closing of its programme's council sessions
  (it must be ready_for_vote before it); for one in `ready_for_vote`, its session's day;
- for a dossier `approved` or `in_payment`, the payment deadline (the balance must be claimed).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Mapping

from sqlalchemy import func, select

from db import models as m
from services import keyset
from services.assignment import team_officers_clause
from services.clock import Clock
from services.commands import Actor
from services.dashboard import figures_of
from services.queries import aid_shown
from services.search import REGIONAL_ROLES, dossier_row, scope_clause, text_matches
from states.lifecycle import STATES

PAGE_SIZE = 50
DEADLINE_KINDS = {
    "documents": "caducité si les pièces demandées ne sont pas remises",
    "agenda": "clôture de l'ordre du jour de la prochaine séance",
    "session": "séance du conseil",
    "payment": "date limite de demande du solde",
    "repayment": "échéance de remboursement du prêt",
}


@dataclass(frozen=True)
class QueueFilters:
    state: str | None = None
    programme: str | None = None
    q: str | None = None
    due_before: date | None = None
    open_only: bool = True
    page: int = 1
    call: str | None = None   # a call's code (SPEC §11.1)
    line: int | None = None   # an aid line's number (SPEC §11.2)
    cursor: str | None = None  # a page reached by its neighbour's link (`services.keyset`)
    assigned: str | None = None  # work sharing: « me » (À moi), « team » (À mon équipe), « none » (Non affectés)


ASSIGNED_VIEWS = {"me": "À moi", "team": "À mon équipe", "none": "Non affectés"}


def _bounded(params: Mapping[str, str], name: str, size: int) -> str | None:
    return (params.get(name) or "").strip()[:size] or None


def queue_filters(params: Mapping[str, str]) -> tuple[QueueFilters, list[str]]:
    """The queue's filters from its URL's query string — the one reading of it, for the screen
    and for its exports (`web.queue_export`), so that both always show the same dossiers — and
    the French messages for the values it had to ignore. An old link's `mine=1` (the « Mes
    dossiers » box the work-sharing views replaced) reads as `assigned=me`."""
    errors = []
    state = params.get("state") or None
    if state and state not in STATES:
        errors.append(f"État inconnu « {state[:32]} » : filtre ignoré.")
        state = None
    raw_due, due = params.get("due_before") or None, None
    if raw_due:
        try:
            due = date.fromisoformat(raw_due)
        except ValueError:
            errors.append(f"Échéance « {raw_due[:10]} » : date AAAA-MM-JJ attendue, filtre ignoré.")
    assigned = params.get("assigned") or None
    if assigned and assigned not in ASSIGNED_VIEWS:
        errors.append(f"Affectation « {assigned[:8]} » inconnue : filtre ignoré.")
        assigned = None
    if assigned is None and params.get("mine"):
        assigned = "me"
    line = params.get("line") or ""
    line_number = int(line) if line.isdigit() and len(line) <= 3 else None
    if line and line_number is None:
        errors.append(f"Ligne « {line[:3]} » : un numéro de ligne est attendu, filtre ignoré.")
    page = params.get("page") or ""
    filters = QueueFilters(state=state, programme=_bounded(params, "programme", 64), q=_bounded(params, "q", 100),
                           due_before=due, open_only=not params.get("closed"), call=_bounded(params, "call", 32),
                           line=line_number, page=int(page) if page.isdigit() and 0 < len(page) <= 6 and int(page) else 1,
                           cursor=_bounded(params, "cursor", 400), assigned=assigned)
    return filters, errors


# The queue's order: the stored next deadline (`services.deadlines`), soonest first and dossiers
# without one last, then the oldest submission first. Index `ix_dossiers_queue` reads it in order.
QUEUE_ORDER = [keyset.Key(m.Dossier.next_deadline_at, nullable=True), keyset.Key(m.Dossier.submitted_at),
               keyset.Key(m.Dossier.id)]
CURSOR_SCOPE = "queue"
# Beyond this many dossiers the page note says « plus de 1 000 »: counting further would read
# every dossier of the scope at each page view.
COUNT_CAP = 1000


def _where(actor: Actor, catalogue, f: QueueFilters) -> list:
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
    if f.assigned == "me":
        where.append(m.Dossier.officer == actor.name)
    elif f.assigned == "none":
        where.append(m.Dossier.officer.is_(None))
    elif f.assigned == "team":
        where.append(team_officers_clause(actor))
    elif f.assigned is not None:
        raise ValueError("assigned")
    if f.q:
        where.append(text_matches(f.q))
    if f.due_before is not None:
        where.append(m.Dossier.next_deadline_at <= f.due_before)
    return where


def _base(actor: Actor):
    base = select(m.Dossier)
    if actor.role == "applicant":  # its scope is its company's SIREN
        base = base.join(m.Company, m.Dossier.company_id == m.Company.id)
    return base


def queue_statement(actor: Actor, catalogue, f: QueueFilters):
    """The queue's dossiers under the filters `f`, as a statement to read in `QUEUE_ORDER` (the
    screen reads one page of it, the exports every row)."""
    return _base(actor).where(*_where(actor, catalogue, f))


def work_queue(uow, actor: Actor, f: QueueFilters, today: date) -> dict:
    """One page of the queue, deadlines soonest first (then the oldest submission first): the
    page after (or before) the cursor's dossier, read in index order — never the whole scope
    sorted to show 50. The count stops at `COUNT_CAP` + 1."""
    base = queue_statement(actor, uow.catalogue, f)
    counted = uow.session.scalar(select(func.count()).select_from(
        base.with_only_columns(m.Dossier.id).limit(COUNT_CAP + 1).subquery()))
    forward, values = True, None
    if f.cursor:
        values, forward = keyset.decode(f.cursor, scope=CURSOR_SCOPE)
    page = max(1, f.page)
    if values is None and page > 1:
        # ?page=N without a cursor (an old link, a typed URL): an offset, in index order.
        stmt = base.order_by(m.Dossier.next_deadline_at.asc().nulls_last(), m.Dossier.submitted_at, m.Dossier.id)
        dossiers = list(uow.session.scalars(stmt.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)))
        more = len(dossiers) > PAGE_SIZE
        dossiers = dossiers[:PAGE_SIZE]
    else:
        dossiers, more = keyset.read_page(uow.session, base, QUEUE_ORDER, values, forward, PAGE_SIZE)
    items = []
    for d in dossiers:
        row = dossier_row(d, uow.catalogue)
        row["call"] = d.call_code
        row["aid"] = aid_shown(d)
        programme = uow.catalogue.get(d.programme_id, d.programme_version)
        row["line"] = (f"{d.line} — {programme.line(d.line).name}"
                       if d.line and len(programme.dossier_lines) > 1 else None)
        row["siren"] = d.company_facts.get("siren")
        if d.next_deadline_at is not None:
            due, kind = d.next_deadline_at, d.next_deadline_kind
            row["deadline"] = {"on": due, "kind": kind, "label": DEADLINE_KINDS[kind], "days_left": (due - today).days}
        else:
            row["deadline"] = None
        items.append(row)
    keys = lambda d: [d.next_deadline_at, d.submitted_at, d.id]  # noqa: E731
    has_next = more if forward else True
    has_prev = (page > 1) if forward else more
    capped = counted > COUNT_CAP
    total = COUNT_CAP if capped else counted
    return {"items": items, "total": total, "total_capped": capped, "page": page,
            "pages": None if capped else max(1, -(-total // PAGE_SIZE)),
            "next_cursor": keyset.encode(keys(dossiers[-1]), forward=True, scope=CURSOR_SCOPE)
            if dossiers and has_next else None,
            "prev_cursor": keyset.encode(keys(dossiers[0]), forward=False, scope=CURSOR_SCOPE)
            if dossiers and has_prev and page > 1 else None}


@dataclass(frozen=True)
class StateCounts:
    """The chips above the queue: how many dossiers of the scope are in each state, and when they
    were counted (None: just now)."""
    by_state: dict[str, int]
    counted_at: datetime | None


def counts_by_state(uow, actor: Actor, clock: Clock) -> StateCounts:
    """A region's staff see their programmes' counts as last stored by the dashboard's count
    (`services.dashboard`, every 15 minutes): grouping the region's dossiers by state at each
    view read them all (786 ms at 1 000 000 dossiers), whatever the page showed. A company's or
    a consultant's scope is its own few dossiers, counted as they are now."""
    if actor.role in REGIONAL_ROLES:
        programmes = list({p.id: p for p in programmes_in_scope(actor, uow.catalogue)}.values())
        stored = figures_of(uow, programmes, clock)
        found: dict[str, int] = {}
        for figures in stored:
            for state, n in figures.by_state.items():
                found[state] = found.get(state, 0) + n
        return StateCounts({s: found[s] for s in STATES if found.get(s)},
                           min((f.computed_at for f in stored), default=None))
    rows = uow.session.execute(
        select(m.Dossier.status, func.count()).join(m.Company, m.Dossier.company_id == m.Company.id)
        .where(scope_clause(actor, uow.catalogue)).group_by(m.Dossier.status)).all()
    live = dict(rows)
    return StateCounts({s: live[s] for s in STATES if s in live}, None)


def programmes_in_scope(actor: Actor, catalogue) -> list:
    if actor.regions is None:
        return [p for p in catalogue.all()] if actor.role in ("applicant", "consultant") else []
    return [p for p in catalogue.all() if p.region in actor.regions]
