"""Reading events fast: plain records instead of ORM objects.

An audit reads whole histories (10,000 events for one dossier, millions for a database): the
ORM's identity map and attribute instrumentation cost more than the reading itself, so the
audit reads rows through SQLAlchemy Core into `EventRecord`s, which carry the same attribute
names as `db.models.Event` (so `services.events.hash_of` works on both)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from db import models as m

EVENT_COLUMNS = ("id", "dossier_id", "dossier_reference", "seq", "at", "actor", "role", "command",
                 "state_before", "state_after", "programme", "data", "reason", "prev_hash", "hash")


class EventRecord:
    __slots__ = EVENT_COLUMNS

    def __init__(self, *values):
        for name, value in zip(EVENT_COLUMNS, values):
            setattr(self, name, value)

    @classmethod
    def of(cls, event: m.Event) -> "EventRecord":
        return cls(*(getattr(event, name) for name in EVENT_COLUMNS))

    def with_seq(self, seq: int) -> "EventRecord":
        copy = EventRecord(*(getattr(self, name) for name in EVENT_COLUMNS))
        copy.seq = seq
        return copy

    def as_dict(self) -> dict:
        return {
            "seq": self.seq, "at": iso(self.at), "actor": self.actor, "role": self.role,
            "command": self.command, "state_before": self.state_before, "state_after": self.state_after,
            "programme": self.programme, "data": self.data, "reason": self.reason,
            "prev_hash": self.prev_hash, "hash": self.hash,
        }


def iso(instant: datetime | None) -> str | None:
    """Instants in exports and replays: ISO 8601 in UTC (the events' own time base)."""
    return None if instant is None else instant.isoformat()


_TABLE = m.Event.__table__
_SELECT = select(*(_TABLE.c[name] for name in EVENT_COLUMNS))


def load_events(session, dossier_id: int, *, until: datetime | None = None) -> list[EventRecord]:
    """A dossier's events in sequence order (then insertion order, so that a duplicated or
    reordered sequence number still shows)."""
    q = _SELECT.where(_TABLE.c.dossier_id == dossier_id)
    if until is not None:
        q = q.where(_TABLE.c.at <= until)
    rows = session.execute(q.order_by(_TABLE.c.seq, _TABLE.c.id)).all()
    return [EventRecord(*row) for row in rows]
