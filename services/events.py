"""The event log: each change of a dossier is one immutable event, chained to the previous one
by SHA-256 so that an edited, removed, inserted or reordered event breaks the chain."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from sqlalchemy import bindparam, insert, select

from db import models as m

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
            "prev_hash": prev_hash, "hash": digest, "recorded_at": at}


EVENTS = m.Event.__table__
_INSERT_EVENT = insert(EVENTS)
# Built once (binding is cheap, building a statement is not): the dossier's last event.
_CHAIN_TIP = (select(EVENTS.c.seq, EVENTS.c.hash).where(EVENTS.c.dossier_id == bindparam("dossier_id"))
              .order_by(EVENTS.c.seq.desc()).limit(1))


def append_event(session, *, dossier: m.Dossier, at: datetime, actor: str, role: str, command: str,
                 state_before: str, data: dict, reason: str | None = None) -> dict:
    """Append the dossier's next event in the session's transaction (Core INSERT: events are
    append-only, never loaded back in the command that writes them). The (dossier, seq) unique
    index refuses a second writer that read the same chain tip."""
    with session.no_autoflush:  # the caller flushed the dossier; events are only ever added here
        last = session.execute(_CHAIN_TIP, {"dossier_id": dossier.id}).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    row = event_row(dossier_id=dossier.id, dossier_reference=dossier.reference, seq=seq, prev_hash=prev, at=at,
                    actor=actor, role=role, command=command, state_before=state_before,
                    state_after=dossier.status, programme=f"{dossier.programme_id}@v{dossier.programme_version}",
                    data=data, reason=reason)
    # One row, one execute (a list of one row would take the driver's executemany path).
    session.execute(_INSERT_EVENT, row)
    return row
