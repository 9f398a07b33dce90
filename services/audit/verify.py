"""Integrity of the history (SPEC §8).

Per dossier, the events form a SHA-256 chain (`services.events`): each event's hash covers its
content, its sequence number and the previous event's hash. `check_history` walks one dossier's
events and *names* what was done to them:

- ``edited``: an event's content no longer gives its hash — or it does, but the next event's
  link no longer points at it (the content was changed and the hash recomputed);
- ``removed``: a sequence number is missing, or the dossier was changed after its last event
  (the tail was cut);
- ``inserted``: an event the chain goes round (its neighbours are linked to each other), or an
  event later than the dossier's last change, or earlier than the event before it — including
  an event moved back in time with the chain re-hashed after it (*backdated*, named at its own
  number), and a last event dated before the dossier's last change while the row's version
  says no event is missing;
- ``reordered``: an event whose hash is right for another sequence number (numbers swapped or
  shifted);
- ``state_mismatch`` / ``state_differs`` / ``paid_differs``: the states do not follow each
  other, or the history does not give the dossier's stored state and net amount paid.

A whole dossier deleted (its row and every event) leaves no chain to walk: the daily anchors
(`services.audit.anchors`) record every dossier's head, and `verify_database` names each
anchored dossier or event that is gone (``dossier_removed``, ``removed``, ``history_rewritten``).

`verify_database` reads the events with plain SQL (no ORM objects) in one ordered pass and
hashes with orjson, falling back to the reference serialisation of `services.events` before it
calls anything edited: 1,000,000 events are checked in seconds (bench/audit_verify.py)."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Iterator, Sequence

import orjson
from sqlalchemy import select

from db import models as m
from services.audit.records import EventRecord
from services.events import GENESIS, hash_of
from services.wording import fr_instant
from states.lifecycle import STATES

UTC = timezone.utc


@dataclass
class Verification:
    dossier_id: int
    reference: str
    ok: bool = True
    problems: list[dict] = field(default_factory=list)

    def fail(self, kind: str, seq: int | None, detail: str) -> None:
        self.ok = False
        self.problems.append({"problem": kind, "seq": seq, "detail": detail})

    def as_dict(self) -> dict:
        return {"dossier_id": self.dossier_id, "reference": self.reference, "ok": self.ok, "problems": self.problems}


@dataclass(frozen=True)
class DossierFacts:
    """What the dossiers table says, for comparison with the history."""

    id: int
    reference: str
    status: str
    net_paid: Decimal
    updated_at: datetime | None
    # The row's version: the dossier is created at version 1, its reference set at version 2,
    # and every event bumps it at least once (`_Command.record`, the sweeps' batch writer; a
    # withdrawal twice), so a row at version n + 1 after n events proves no event was cut from
    # the tail: a last event dated before the row's last change was then moved back in time.
    version: int | None = None


def _facts(dossier) -> DossierFacts | None:
    if dossier is None:
        return None
    return DossierFacts(dossier.id, dossier.reference, dossier.status,
                        dossier.paid_total - dossier.recovered_total, dossier.updated_at, dossier.version)


# -- one dossier -------------------------------------------------------------------------------

def check_history(result: Verification, facts: DossierFacts | None, events: Sequence,
                  valid: Sequence[bool], rehash: Callable[[object, int], str]) -> Verification:
    """Name what was done to one dossier's events (in stored sequence order).

    `valid[i]`: event i's content gives its hash with its stored sequence number;
    `rehash(e, seq)`: the hash event e would have with another sequence number."""
    n = len(events)
    if n == 0:
        if facts is not None:
            result.fail("removed", None, "le dossier existe mais n'a plus aucun événement")
        return result
    reported: set[tuple[str, int | None]] = set()

    def fail(kind: str, seq: int | None, detail: str) -> None:
        if (kind, seq) not in reported:
            reported.add((kind, seq))
            result.fail(kind, seq, detail)

    renumbered: list[tuple[int, int]] = []  # (stored seq, original seq)
    backdated: set[int] = set()
    renumbered_at: set[int] = set()
    by_hash = {e.hash: i for i, e in enumerate(events)}
    expected = 1
    state = "draft"
    paid = Decimal("0.00")
    previous = None
    previous_i = -1
    state_problems: list[tuple[int, str]] = []
    for i, e in enumerate(events):
        s = e.seq
        link_ok = e.prev_hash == (previous.hash if previous is not None else GENESIS)
        skipped = (0 < i < n - 1 and events[i + 1].prev_hash == events[i - 1].hash) or \
                  (i == 0 and n > 1 and events[1].prev_hash == GENESIS)
        late = facts is not None and facts.updated_at is not None and e.at > facts.updated_at
        early = previous is not None and e.at < previous.at
        original = None
        if not valid[i]:
            for k in _seq_candidates(s, i):
                if rehash(e, k) == e.hash:
                    original = k
                    break
        after_gap = False
        if original is not None:
            renumbered.append((s, original))
            renumbered_at.add(i)
        elif early and valid[i] and link_ok:
            # Dated before the event it follows, yet hashed and linked in place: the event was
            # moved back in time (or forged so) and the chain re-hashed from it on. Named at its
            # own number; it stays in the fold (its content is the dossier's), so the events
            # after it are not blamed for it.
            backdated.add(s)
            fail("inserted", s, f"événement n°{s} ({e.command}) antidaté : daté du {fr_instant(e.at)}, avant "
                                f"l'événement n°{previous.seq} qui le précède ({fr_instant(previous.at)})")
        elif skipped or (late and not valid[i]) or (early and not (valid[i] and link_ok)):
            why = ("la chaîne le contourne : l'événement suivant est lié au précédent" if skipped
                   else "postérieur à la dernière modification du dossier" if late
                   else "antérieur à l'événement qui le précède")
            fail("inserted", s, f"événement n°{s} ({e.command}, {fr_instant(e.at)}) ajouté : {why}")
            continue  # an inserted event is not part of the dossier's life
        elif not valid[i]:
            fail("edited", s, f"événement n°{s} ({e.command}) : son contenu ne correspond plus à son empreinte")
        elif late:
            fail("inserted", s, f"événement n°{s} ({e.command}, {fr_instant(e.at)}) ajouté : "
                                f"postérieur à la dernière modification du dossier")
            continue
        if s > expected and original is None:
            after_gap = True
            missing = f"n°{expected}" if s == expected + 1 else f"n°{expected} à {s - 1}"
            for k in range(expected, s):
                fail("removed", k, f"événement {missing} supprimé (la séquence passe de {expected - 1} à {s})")
        elif not link_ok and original is None and valid[i]:
            target = by_hash.get(e.prev_hash)
            if (target is not None and target in renumbered_at) or previous_i in renumbered_at:
                pass  # explained by the renumbering reported below
            elif target is None and previous is not None and valid[previous_i] and previous.seq == s - 1:
                fail("edited", previous.seq, f"événement n°{previous.seq} ({previous.command}) modifié puis "
                                             f"ré-empreinté : l'événement n°{s} ne le reconnaît plus")
            elif target is not None:
                fail("reordered", s, f"événement n°{s} ({e.command}) déplacé : il suit un autre événement")
            else:
                fail("edited", s, f"événement n°{s} ({e.command}) : son lien avec l'événement précédent a été modifié")
        if e.state_before != state and not after_gap:
            state_problems.append((s, f"événement n°{s} : état avant « {e.state_before} », l'historique donne « {state} »"))
        if e.state_after not in STATES:
            fail("edited", s, f"événement n°{s} : état inconnu « {e.state_after} »")
        state = e.state_after
        if e.command == "pay":
            data = e.data or {}
            try:
                paid += Decimal(data.get("amount") or "0") - Decimal(data.get("recovery") or "0")
            except (ArithmeticError, TypeError, ValueError):
                fail("edited", s, f"événement n°{s} : montant illisible")
        expected = max(expected, s) + 1
        previous, previous_i = e, i
    if not renumbered:  # after a renumbering the states follow the new numbers: no extra noise
        for s, detail in state_problems:
            fail("state_mismatch", s, detail)
    for stored, original, count in _runs(renumbered):
        last_stored, last_original = stored + count - 1, original + count - 1
        span = f"n°{stored}" if count == 1 else f"n°{stored} à {last_stored}"
        was = f"n°{original}" if count == 1 else f"n°{original} à {last_original}"
        fail("reordered", stored, f"événement {span} : enregistré sous le {was} (numéros permutés ou décalés)")
    if facts is not None:
        last = events[-1]
        if facts.updated_at is not None and last.at < facts.updated_at and last.seq not in backdated:
            if facts.version is not None and facts.version == last.seq + 1:
                # As many events as the row's version counts: none is missing; the last one no
                # longer bears the instant the dossier recorded for it.
                fail("inserted", last.seq, f"événement n°{last.seq} ({last.command}) antidaté : daté du "
                                           f"{fr_instant(last.at)}, le dossier a été modifié pour la dernière fois le "
                                           f"{fr_instant(facts.updated_at)}")
            else:
                fail("removed", last.seq + 1, f"le dossier a changé le {fr_instant(facts.updated_at)}, après son dernier "
                                              f"événement (n°{last.seq}) : au moins un événement a été supprimé")
        if state != facts.status:
            fail("state_differs", None, f"l'historique donne l'état « {state} », la base « {facts.status} »")
        if paid != facts.net_paid:
            fail("paid_differs", None, f"l'historique donne {paid} € payés, la base {facts.net_paid} €")
        if last.dossier_reference != facts.reference:
            fail("edited", None, f"référence du dossier « {facts.reference} », l'historique dit « {last.dossier_reference} »")
    return result


def _seq_candidates(s: int, index: int) -> list[int]:
    out = [index + 1]
    for delta in (1, -1, 2, -2, 3, -3):
        if s + delta > 0:
            out.append(s + delta)
    return [k for k in dict.fromkeys(out) if k != s]


def _runs(pairs: list[tuple[int, int]]):
    """Consecutive renumberings with the same shift, as (first stored, first original, count)."""
    out = []
    for stored, original in pairs:
        if out and stored == out[-1][0] + out[-1][2] and original - stored == out[-1][1] - out[-1][0]:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((stored, original, 1))
    return out


def _rehash_reference(e, seq: int) -> str:
    return hash_of(e.with_seq(seq) if isinstance(e, EventRecord) else EventRecord.of(e).with_seq(seq))


def accept_redactions(events: Sequence, valid: list[bool]) -> list[bool]:
    """An anonymised dossier (services.retention, docs/data-protection.md §4): its `anonymise`
    event — itself hashed and chained like any other — records, for each event it redacted, the
    hash of the event as it now reads. Such an event keeps its original hash (the chain's links
    are unchanged); it is valid when its content gives the hash the manifest records.

    The manifest is trusted only from an `anonymise` event that could have been written by the
    retention run: its own content gives its hash, it is the dossier's last event, written by
    the system on a dossier in a final state whose state it does not change, on or after the day
    the programme's retention made the dossier due; and an event it covers must read as the
    redaction leaves it (no personal value left). An event edited after the redaction gives
    neither hash and stays invalid."""
    if not events or events[-1].command != "anonymise" or not valid[-1]:
        return valid
    last = events[-1]
    manifest = (last.data or {}).get("redacted") if isinstance(last.data, dict) else None
    if not manifest or not _anonymise_is_credible(events, last):
        return valid
    from services.retention import redact, redact_actor

    for i, e in enumerate(events[:-1]):
        expected = manifest.get(str(e.seq))
        if (not valid[i] and expected is not None and hash_of(e) == expected
                and redact(e.data) == e.data and redact_actor(e.actor, e.role) == e.actor):
            valid[i] = True
    return valid


def _anonymise_is_credible(events: Sequence, last) -> bool:
    from programmes import Retention, default_catalogue
    from rules.calendar import add_months, paris_date
    from rules.errors import RuleViolation
    from states.lifecycle import FINAL_STATES

    if last.role != "system" or last.state_before != last.state_after or last.state_after not in FINAL_STATES:
        return False
    closed = next((e for e in events if e.state_after in FINAL_STATES), None)
    if closed is None or closed is last:
        return False
    try:
        pid, version = last.programme.rsplit("@v", 1)
        retention = default_catalogue().get(pid, int(version)).retention
    except (ValueError, RuleViolation):
        retention = Retention()
    return paris_date(last.at) >= add_months(paris_date(closed.at), 12 * retention.years_after_closure)


def verify_events(dossier: m.Dossier, events: list) -> Verification:
    """One dossier's events (ORM events or records) against the dossier row."""
    records = [e if isinstance(e, EventRecord) else EventRecord.of(e) for e in events]
    result = Verification(dossier.id, dossier.reference)
    valid = accept_redactions(records, [hash_of(e) == e.hash for e in records])
    return check_history(result, _facts(dossier), records, valid, _rehash_reference)


def verify_dossier(session, dossier_id: int) -> Verification:
    from services.audit.records import load_events

    dossier = session.get(m.Dossier, dossier_id)
    events = load_events(session, dossier_id)
    if dossier is None:
        reference = events[0].dossier_reference if events else str(dossier_id)
        result = Verification(dossier_id, reference)
        result.fail("dossier_removed", None, f"le dossier {reference} n'existe plus dans la table des dossiers")
        return result
    return verify_events(dossier, events)


# -- the whole database ------------------------------------------------------------------------

@dataclass
class AuditReport:
    ok: bool
    dossiers: int
    events: int
    problems: list[dict]
    anchors: dict
    seconds: float

    def as_dict(self) -> dict:
        return {"ok": self.ok, "dossiers_checked": self.dossiers, "events_checked": self.events,
                "problems": self.problems, "anchors": self.anchors, "seconds": round(self.seconds, 3)}


def _at_string(value) -> str:
    """The instant as `services.events.utc_iso` renders it, from what the driver returns."""
    if isinstance(value, str):  # SQLite: naive UTC 'YYYY-MM-DD HH:MM:SS.ffffff'
        if len(value) == 26:
            return f"{value[:10]}T{value[11:]}Z"
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _at_datetime(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fast_hash(ref, seq, at_s, actor, role, command, before, after, programme, data, reason, prev) -> str:
    payload = {"dossier": ref, "seq": seq, "at": at_s, "actor": actor, "role": role, "command": command,
               "state_before": before, "state_after": after, "programme": programme, "data": data,
               "reason": reason, "prev": prev}
    try:
        raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        from services.events import canonical_json
        raw = canonical_json(payload).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def _event_sql(dossier_id: int | None) -> tuple[str, dict]:
    sql = ("SELECT dossier_id, dossier_reference, seq, at, actor, role, command, state_before, state_after, "
           "programme, data, reason, prev_hash, hash, id FROM events")
    params = {}
    if dossier_id is not None:
        sql += " WHERE dossier_id = %(d)s"
        params = {"d": dossier_id}
    # (dossier_id, seq) is unique: the order follows its index, no sort needed.
    return sql + " ORDER BY dossier_id, seq", params


# Dossier rows are read by id in batches of this many, beside the events' ordered cursor: the
# check holds one batch and one dossier's events, never the whole table.
FACTS_BATCH = 5000


def _dossier_facts(conn, dossier_id: int | None) -> Iterator[DossierFacts]:
    """The dossiers rows in id order, by keyset (no OFFSET), FACTS_BATCH at a time."""
    last: int | None = None
    while True:
        q = (select(m.Dossier.id, m.Dossier.reference, m.Dossier.status, m.Dossier.paid_total,
                    m.Dossier.recovered_total, m.Dossier.updated_at, m.Dossier.version)
             .order_by(m.Dossier.id).limit(FACTS_BATCH))
        if dossier_id is not None:
            q = q.where(m.Dossier.id == dossier_id)
        if last is not None:
            q = q.where(m.Dossier.id > last)
        rows = conn.execute(q).all()
        for r in rows:
            yield DossierFacts(r.id, r.reference, r.status, r.paid_total - r.recovered_total, r.updated_at, r.version)
        if len(rows) < FACTS_BATCH:
            return
        last = rows[-1].id


class _RowsById:
    """The dossiers rows, walked in id order beside the events (ordered by dossier id too)."""

    def __init__(self, rows: Iterator[DossierFacts]):
        self._rows = rows
        self._head = next(rows, None)

    def before(self, dossier_id: int) -> Iterator[DossierFacts]:
        while self._head is not None and self._head.id < dossier_id:
            yield self._head
            self._head = next(self._rows, None)

    def take(self, dossier_id: int) -> DossierFacts | None:
        if self._head is not None and self._head.id == dossier_id:
            facts, self._head = self._head, next(self._rows, None)
            return facts
        return None

    def rest(self) -> Iterator[DossierFacts]:
        return self.before(2**63)


def verify_database(engine, *, dossier_id: int | None = None, anchors: bool = True,
                    journal: str | None = None) -> AuditReport:
    """Every dossier's chain, the dossiers against their histories, and the anchored heads.

    One ordered pass over the events merged with the dossiers read by id: memory holds one
    dossier's history and one batch of rows, whatever the size of the database."""
    started = time.perf_counter()
    problems: list[dict] = []
    with engine.connect() as conn:
        rows = _RowsById(_dossier_facts(conn, dossier_id))
        dossiers_seen = 0
        the_dossier: DossierFacts | None = None  # with `dossier_id`: its row, for the anchors

        def without_events(facts: DossierFacts) -> None:
            nonlocal dossiers_seen
            dossiers_seen += 1
            problems.append({"dossier": facts.reference, "dossier_id": facts.id, "problem": "removed", "seq": None,
                             "detail": "le dossier existe mais n'a plus aucun événement"})

        count = 0
        sql, params = _event_sql(dossier_id)
        if engine.dialect.name == "sqlite":
            sql = sql.replace("%(d)s", ":d")
            cursor = conn.exec_driver_sql(sql, params)
        else:
            cursor = conn.execution_options(stream_results=True, yield_per=20000).exec_driver_sql(sql, params)

        def flush(did: int, group: list[EventRecord], valid: list[bool]) -> None:
            nonlocal dossiers_seen, the_dossier
            for skipped in rows.before(did):  # rows no event reached
                without_events(skipped)
            facts = rows.take(did)
            dossiers_seen += 1
            if facts is not None:
                the_dossier = facts
            result = Verification(did, facts.reference if facts else group[0].dossier_reference)
            if facts is None:
                result.fail("dossier_removed", None, f"le dossier {result.reference} a des événements mais plus de ligne dossier")
            check_history(result, facts, group, accept_redactions(group, valid), _rehash_reference)
            for p in result.problems:
                problems.append({"dossier": result.reference, "dossier_id": did, **p})

        current = None
        group: list[EventRecord] = []
        valid: list[bool] = []
        loads = orjson.loads
        for row in cursor:
            did, ref, seq, at, actor, role, command, before, after, programme, data, reason, prev, h, eid = row
            if did != current:
                if group:
                    flush(current, group, valid)
                current, group, valid = did, [], []
            if isinstance(data, (str, bytes)):
                data = loads(data)
            ok = _fast_hash(ref, seq, _at_string(at), actor, role, command, before, after, programme, data,
                            reason, prev) == h
            e = EventRecord(eid, did, ref, seq, _at_datetime(at), actor, role, command, before, after, programme,
                            data, reason, prev, h)
            if not ok:  # the reference serialisation decides
                ok = hash_of(e) == h
            group.append(e)
            valid.append(ok)
            count += 1
        if group:
            flush(current, group, valid)
        for skipped in rows.rest():
            the_dossier = the_dossier or skipped
            without_events(skipped)
        anchor_report: dict = {"checked": False}
        if anchors:
            from services.audit.anchors import check_anchors

            only = the_dossier.reference if dossier_id is not None and the_dossier is not None else None
            anchor_report, anchor_problems = check_anchors(conn, only_reference=only, dossier_id=dossier_id,
                                                           journal=journal)
            problems += anchor_problems
    problems.sort(key=lambda p: (p.get("dossier") or "", p.get("seq") if p.get("seq") is not None else 10**12))
    return AuditReport(not problems, dossiers_seen, count, problems, anchor_report,
                       time.perf_counter() - started)
