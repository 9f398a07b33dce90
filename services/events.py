"""The event log: each change of a dossier is one immutable event, chained to the previous one
by SHA-256 so that an edited, removed, inserted or reordered event breaks the chain."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.orm import Session

from db import models as m
from rules.calendar import paris_date
from services import deadlines
from services.telemetry import REQUEST_ID

GENESIS = "0" * 64


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def utc_iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(*, dossier_reference: str, seq: int, at: datetime, actor: str, role: str, command: str,
               state_before: str, state_after: str, programme: str, data: dict, reason: str | None,
               prev_hash: str) -> str:
    payload = canonical_json({
        "dossier": dossier_reference, "seq": seq, "at": utc_iso(at), "actor": actor, "role": role,
        "command": command, "state_before": state_before, "state_after": state_after,
        "programme": programme, "data": data, "reason": reason, "prev": prev_hash,
    })
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def hash_of(event: m.Event) -> str:
    return event_hash(
        dossier_reference=event.dossier_reference, seq=event.seq, at=event.at, actor=event.actor,
        role=event.role, command=event.command, state_before=event.state_before,
        state_after=event.state_after, programme=event.programme, data=event.data,
        reason=event.reason, prev_hash=event.prev_hash,
    )


def event_row(*, dossier_id: int, dossier_reference: str, seq: int, prev_hash: str, at: datetime, actor: str,
              role: str, command: str, state_before: str, state_after: str, programme: str, data: dict,
              reason: str | None) -> dict:
    """One event row with its hash: what `append_event` writes for a command and the batch
    writer (`services.bulk`) for a sweep. The data goes through JSON once so that what is hashed
    is exactly what is stored."""
    data = json.loads(canonical_json(data))
    digest = event_hash(dossier_reference=dossier_reference, seq=seq, at=at, actor=actor, role=role,
                        command=command, state_before=state_before, state_after=state_after,
                        programme=programme, data=data, reason=reason, prev_hash=prev_hash)
    return {"dossier_id": dossier_id, "dossier_reference": dossier_reference, "seq": seq, "at": at,
            "actor": actor, "role": role, "command": command, "state_before": state_before,
            "state_after": state_after, "programme": programme, "data": data, "reason": reason,
            "prev_hash": prev_hash, "hash": digest, "recorded_at": at,
            # outside the hash on purpose: operational metadata (services.telemetry), not evidence
            "request_id": REQUEST_ID.get()}


EVENTS = m.Event.__table__
_INSERT_EVENT = insert(EVENTS)
# Built once (binding is cheap, building a statement is not): the dossier's last event.
_CHAIN_TIP = (select(EVENTS.c.seq, EVENTS.c.hash).where(EVENTS.c.dossier_id == bindparam("dossier_id"))
              .order_by(EVENTS.c.seq.desc()).limit(1))


def _tip_column(column):
    return (select(column).where(EVENTS.c.dossier_id == m.Dossier.id).order_by(EVENTS.c.seq.desc()).limit(1)
            .correlate(m.Dossier).scalar_subquery())


# The chain tip as two columns of the statement that loads a dossier (`services.uow.load_dossier`):
# a command then needs no statement of its own to find it. Read in the same snapshot as the
# dossier's version, it is still the tip when the command's UPDATE … WHERE version = <read>
# succeeds, since every event bumps the version in its own transaction (`_Command.record`,
# `services.bulk`); and the (dossier, seq) unique index refuses any writer that got it wrong.
CHAIN_TIP_COLUMNS = (_tip_column(EVENTS.c.seq), _tip_column(EVENTS.c.hash))
_TIPS = "usine.chain_tips"
_APPENDED = "usine.appended_events"


def remember_tip(session, dossier_id: int, seq: int | None, digest: str | None) -> None:
    """What the loading statement read, for `append_event` (forgotten when the transaction ends)."""
    session.info.setdefault(_TIPS, {})[dossier_id] = (seq or 0, digest or GENESIS)


def forget_tips(session) -> None:
    session.info.pop(_TIPS, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_tips_with_the_transaction(session, transaction) -> None:
    # A tip is true in the transaction that read it: forgotten at its end, and at the end of a
    # savepoint (a rolled-back savepoint may have held an event). Not at the end of the
    # subtransaction each flush opens (parent set, not nested).
    if transaction.parent is None or transaction.nested:
        forget_tips(session)
        session.info.pop(_APPENDED, None)


def appended_events(session) -> tuple[tuple[int, int, str], ...]:
    """(dossier id, seq, hash) of each event appended in the session's current transaction: what
    tells, once a commit's answer was lost with its connection, whether that commit happened."""
    return tuple(session.info.get(_APPENDED, ()))


def _tip(session, dossier_id: int) -> tuple[int, str]:
    known = session.info.get(_TIPS, {}).get(dossier_id)
    if known is not None:
        return known
    with session.no_autoflush:  # the caller flushed the dossier; events are only ever added here
        last = session.execute(_CHAIN_TIP, {"dossier_id": dossier_id}).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


def append_event(session, *, dossier: m.Dossier, at: datetime, actor: str, role: str, command: str,
                 state_before: str, data: dict, reason: str | None = None) -> dict:
    """Append the dossier's next event in the session's transaction (Core INSERT: events are
    append-only, never loaded back in the command that writes them). The (dossier, seq) unique
    index refuses a second writer that read the same chain tip. The tip is the one read with the
    dossier when the unit of work loaded it, else read here."""
    last_seq, prev = _tip(session, dossier.id)
    seq = last_seq + 1
    row = event_row(dossier_id=dossier.id, dossier_reference=dossier.reference, seq=seq, prev_hash=prev, at=at,
                    actor=actor, role=role, command=command, state_before=state_before,
                    state_after=dossier.status, programme=f"{dossier.programme_id}@v{dossier.programme_version}",
                    data=data, reason=reason)
    # One row, one execute (a list of one row would take the driver's executemany path).
    session.execute(_INSERT_EVENT, row)
    remember_tip(session, dossier.id, seq, row["hash"])
    session.info.setdefault(_APPENDED, []).append((dossier.id, seq, row["hash"]))
    deadlines.mark(session, dossier.id, paris_date(at))
    return row
