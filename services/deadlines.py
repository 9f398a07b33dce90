"""What a dossier's listing rows are sorted and searched on, stored on the dossier and kept right
by the write path (docs/performance.md):

- `next_deadline_at` / `next_deadline_kind`: the dossier's next deadline, the soonest of
  - `documents`: the lapse day of an open document request (the dossier lapses if the pieces
    do not come);
  - `agenda`: for a dossier in `action_plan`, the next agenda closing (on or after today) of its
    programme's council sessions (it must be ready_for_vote before it);
  - `session`: for one in `ready_for_vote`, its session's day;
  - `payment`: for one `approved` or `in_payment`, the payment deadline (the balance must be
    claimed);
  - `repayment`: for one `in_repayment` or `in_default`, the due day of the loan's oldest unpaid
    instalment (`loan_next_due_on`, kept by the loan commands and the sweep; past when overdue);
  on a tie, the kind first in alphabetical order (what the queue always showed);
- `search_text`: the reference, company name, SIREN, consultant and officer, lower case and
  accents folded, one field per line (a search never matches across two fields).

Who keeps them right: every event appended (`services.events.append_event`) and every batch of
the set-based sweep (`services.bulk.BatchWriter.write`) marks its dossiers; a council session
created marks its programme's `action_plan` dossiers (their agenda deadline may move);
`UnitOfWork.commit` then recomputes the marked dossiers with `refresh`, in the same
transaction: two statements (one SELECT, one UPDATE of the rows that changed) whatever their
number. The agenda deadline also moves with time alone (a session's agenda closes): the daily
sweep refreshes the dossiers whose stored agenda deadline has passed (`roll_agenda_deadlines`).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date

from sqlalchemy import ColumnElement, and_, bindparam, case, event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from db import models as m
from states.lifecycle import LOAN_STATES

D = m.Dossier
_TABLE = D.__table__
KINDS = ("agenda", "documents", "payment", "repayment", "session")
_DOSSIERS = "usine.derived.dossiers"      # session.info: {dossier id: the day it changed}
_PROGRAMMES = "usine.derived.programmes"  # session.info: {programme id: the day a session was added}
_SEPARATOR = "\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss"})


def fold(text: str | None) -> str:
    """Lower case, accents removed, ligatures spelled out: « Forgès & Œuvres » → « forges & oeuvres »."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_needle(text: str) -> str:
    """A search string folded as `search_text` is (control characters, the field separator
    among them, cannot be typed into a search: they are removed)."""
    return _CONTROL.sub("", fold(text.strip()))


def search_text_of(reference: str, company_facts: dict | None, consultant: str | None, officer: str | None) -> str:
    facts = company_facts or {}
    return _SEPARATOR.join(fold(x) for x in (reference, facts.get("name"), facts.get("siren"), consultant, officer))


def soonest(candidates: dict[str, date | None]) -> tuple[date | None, str | None]:
    found = sorted((_as_date(v), kind) for kind, v in candidates.items() if v is not None)
    return found[0] if found else (None, None)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _candidate_columns(today: date):
    documents = (select(func.min(m.DocumentRequest.lapse_on))
                 .where(m.DocumentRequest.dossier_id == D.id, m.DocumentRequest.status == "open")
                 .correlate(D).scalar_subquery())
    next_agenda = (select(func.min(m.CouncilSession.agenda_closes_on))
                   .where(m.CouncilSession.programme_id == D.programme_id,
                          m.CouncilSession.agenda_closes_on >= today)
                   .correlate(D).scalar_subquery())
    own_session = (select(m.CouncilSession.session_date).where(m.CouncilSession.id == D.session_id)
                   .correlate(D).scalar_subquery())
    return {
        "documents": documents,
        "agenda": case((D.status == "action_plan", next_agenda), else_=None),
        "session": case((D.status == "ready_for_vote", own_session), else_=None),
        "payment": case((D.status.in_(("approved", "in_payment")), D.payment_deadline_on), else_=None),
        "repayment": case((D.status.in_(LOAN_STATES), D.loan_next_due_on), else_=None),
    }


# Its own writer, outside `services.dossier_writes`: these derived listing columns are neither
# the dossier's state nor its amounts, and are written without a version (recomputed from what
# the version-checked write left, in the same transaction).
_UPDATE = (update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
           .values(next_deadline_at=bindparam("b_at"), next_deadline_kind=bindparam("b_kind"),
                   search_text=bindparam("b_text")))


def refresh(session, where: ColumnElement[bool], today: date) -> int:
    """Recompute the derived columns of the dossiers matching `where`, as of `today`; write those
    that changed. One SELECT and at most one (executemany) UPDATE. Returns how many changed.
    `session` is an ORM session (loaded dossiers then read the new values) or a connection."""
    columns = _candidate_columns(today)
    rows = session.execute(
        select(D.id, D.reference, D.company_facts, D.consultant, D.officer, D.next_deadline_at,
               D.next_deadline_kind, D.search_text, *(c.label(k) for k, c in columns.items()))
        .where(where)).all()
    changes = []
    for row in rows:
        at, kind = soonest({k: getattr(row, k) for k in columns})
        text = search_text_of(row.reference, row.company_facts, row.consultant, row.officer)
        if (at, kind, text) != (row.next_deadline_at, row.next_deadline_kind, row.search_text):
            changes.append({"b_id": row.id, "b_at": at, "b_kind": kind, "b_text": text})
    if not changes:
        return 0
    session.execute(_UPDATE, changes)
    if isinstance(session, Session):
        for change in changes:
            held = session.identity_map.get(identity_key(D, change["b_id"]))
            if held is not None:
                set_committed_value(held, "next_deadline_at", change["b_at"])
                set_committed_value(held, "next_deadline_kind", change["b_kind"])
                set_committed_value(held, "search_text", change["b_text"])
    return len(changes)


def mark(session: Session, dossier_id: int, today: date) -> None:
    """The dossier changed in this unit of work: refresh it before the commit."""
    held = session.info.setdefault(_DOSSIERS, {})
    held[dossier_id] = max(today, held.get(dossier_id, today))


def mark_programme(session: Session, programme_id: str, today: date) -> None:
    """A council session was added to the programme: its `action_plan` dossiers' agenda
    deadline may have moved."""
    held = session.info.setdefault(_PROGRAMMES, {})
    held[programme_id] = max(today, held.get(programme_id, today))


@event.listens_for(Session, "after_transaction_end")
def _forget_marks_with_the_transaction(session, transaction) -> None:
    # Over-marking is harmless (a refresh finds nothing changed): forgotten only when the whole
    # transaction ends, not with a savepoint.
    if transaction.parent is None:
        session.info.pop(_DOSSIERS, None)
        session.info.pop(_PROGRAMMES, None)


def refresh_marked(session: Session) -> int:
    """What the unit of work marked, recomputed (called by `UnitOfWork.commit`)."""
    dossiers = session.info.pop(_DOSSIERS, None)
    programmes = session.info.pop(_PROGRAMMES, None)
    if not dossiers and not programmes:
        return 0
    session.flush()
    changed = 0
    by_day: dict[date, list[int]] = {}
    for dossier_id, day in (dossiers or {}).items():
        by_day.setdefault(day, []).append(dossier_id)
    for day, ids in by_day.items():
        changed += refresh(session, D.id.in_(sorted(ids)), day)
    for programme_id, day in (programmes or {}).items():
        changed += refresh(session, and_(D.programme_id == programme_id, D.status == "action_plan"), day)
    return changed


def roll_agenda_deadlines(session, today: date) -> int:
    """The daily step: dossiers whose stored agenda deadline is past (the agenda closed, the
    next session's may be the deadline now) recomputed as of today."""
    return refresh(session, and_(D.next_deadline_kind == "agenda", D.next_deadline_at < today), today)


def backfill(connection, today: date, batch: int = 5000) -> int:
    """Every dossier's derived columns, in batches of ids (the migration, a built bench database)."""
    changed, after = 0, 0
    while True:
        ids = connection.execute(select(D.id).where(D.id > after).order_by(D.id).limit(batch)).scalars().all()
        if not ids:
            return changed
        changed += refresh(connection, and_(D.id >= ids[0], D.id <= ids[-1]), today)
        after = ids[-1]


__all__ = ["fold", "fold_needle", "search_text_of", "soonest", "refresh", "mark", "mark_programme",
           "refresh_marked", "roll_agenda_deadlines", "backfill", "KINDS"]
