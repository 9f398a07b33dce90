"""Set-based writing for the scheduled work (sweeps, digests): the same rows the command
functions write — an event chained to the dossier's previous one, a rendered outbox row — but
built in memory for a whole batch and written with one statement per table.

What a command does for one dossier (`services.commands`: `_Command.record`, `enqueue`), these
helpers do for many, identically: the same event fields and hash (`services.events`), the same
rendered notification (`notifications.rendering.render`) with the same recipient and context
(`services.outbox`). `tests/test_sweep_equivalence.py` holds them to it."""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, insert, update

from db import models as m
from db.types import Instant
from rules.calendar import paris_date
from services import deadlines
from services.dossier_writes import DossierWrite, write_dossiers
from services.events import GENESIS, event_row, forget_tips
from services.outbox import applicant_recipient, dossier_context, notification_row

SYSTEM_ACTOR = ("usine", "system")  # services.commands.SYSTEM

EVENTS = m.Event.__table__
NOTIFICATIONS = m.Notification.__table__
REQUESTS = m.DocumentRequest.__table__


class VersionConflict(Exception):
    """A dossier of the batch changed since the batch read it: the batch is rolled back and read again."""


# -- recipients --------------------------------------------------------------------------------

STAFF_EMAIL_DOMAIN_ENV = "USINE_STAFF_EMAIL_DOMAIN"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", ".", ascii_text).strip(".") or "agent"


def officer_recipient(name: str) -> dict:
    """An officer as recorded on dossiers ("Claire Fabre, chargée de mission") → a recipient.

    The users of the service carry no e-mail address yet: the address is the name before the
    comma, as `prenom.nom`, at the staff domain (`USINE_STAFF_EMAIL_DOMAIN`)."""
    domain = os.environ.get(STAFF_EMAIL_DOMAIN_ENV) or "agents.usine.invalid"
    return {"role": "officer", "name": name, "email": f"{_slug(name.split(',')[0])}@{domain}"}


def company_recipient(*, name: str, siren: str, email: str | None) -> dict:
    """A company known to the service, addressed the way its dossiers' letters are."""
    return applicant_recipient(SimpleNamespace(company_facts={"name": name, "siren": siren, "email": email}))


def dossier_stand_in(*, reference: str, company_facts: dict, status: str) -> SimpleNamespace:
    """What `dossier_context` and `applicant_recipient` read of a dossier, without loading it."""
    return SimpleNamespace(reference=reference, company_facts=company_facts, status=status)


def letter_context(dossier: SimpleNamespace, programme, **extra) -> dict:
    """The context `_Command.notify` gives a dossier's letter."""
    return {"dossier": dossier_context(dossier, programme), **extra}


# -- outbox rows ---------------------------------------------------------------------------------

# -- events ----------------------------------------------------------------------------------------

@dataclass
class _Tip:
    seq: int
    hash: str
    version: int
    first_version: int


class BatchWriter:
    """Collects the events, dossier updates and outbox rows of one batch, then writes them with
    one statement per table. Several items on one dossier chain their events in order and bump
    its version once per event, as separate commands would."""

    def __init__(self, now: datetime):
        self.now = now
        self.events: list[dict] = []
        self.notifications: list[dict] = []
        self._tips: dict[int, _Tip] = {}
        self._dossier_changes: dict[int, dict] = {}
        self.closed_requests: list[dict] = []

    def tip(self, *, dossier_id: int, last_seq: int | None, last_hash: str | None, version: int) -> _Tip:
        tip = self._tips.get(dossier_id)
        if tip is None:
            tip = _Tip(last_seq or 0, last_hash or GENESIS, version, version)
            self._tips[dossier_id] = tip
        return tip

    def event(self, tip: _Tip, *, dossier_id: int, reference: str, programme_key: str, command: str,
              state_before: str, state_after: str, data: dict, reason: str | None = None) -> dict:
        """`services.events.append_event`, for a dossier whose chain tip is `tip`."""
        actor, role = SYSTEM_ACTOR
        row = event_row(dossier_id=dossier_id, dossier_reference=reference, seq=tip.seq + 1, prev_hash=tip.hash,
                        at=self.now, actor=actor, role=role, command=command, state_before=state_before,
                        state_after=state_after, programme=programme_key, data=data, reason=reason)
        tip.seq, tip.hash = row["seq"], row["hash"]
        tip.version += 1  # `_Command.record` bumps the dossier's version with each event
        self.events.append(row)
        self._dossier_changes.setdefault(dossier_id, {})
        return row

    def change_dossier(self, dossier_id: int, **values) -> None:
        """Columns to set on the dossier besides `updated_at` and `version` (status, closed_at...)."""
        self._dossier_changes.setdefault(dossier_id, {}).update(values)

    def close_open_requests(self, dossier_id: int, status: str) -> None:
        self.closed_requests.append({"b_dossier": dossier_id, "b_status": status, "b_closed": self.now})

    def notify(self, row: dict) -> None:
        self.notifications.append(row)

    def write(self, session) -> int:
        """Executes the batch's statements (at most four); returns how many were executed.
        Raises VersionConflict when a dossier changed since it was read."""
        forget_tips(session)  # tips `load_dossier` read in this transaction are no longer tips
        for dossier_id in self._dossier_changes:
            deadlines.mark(session, dossier_id, paris_date(self.now))
        changes = [DossierWrite(dossier_id, self._tips[dossier_id].first_version, self._tips[dossier_id].version,
                                {"updated_at": self.now, **values})
                   for dossier_id, values in self._dossier_changes.items()]
        # The one writer of dossier rows (`services.dossier_writes`): one statement per set of
        # changed columns, dossiers in id order (concurrent batches lock rows in the same order).
        unmatched = write_dossiers(session.connection(), changes)
        executed = len({tuple(sorted(c.values)) for c in changes})
        if unmatched:
            raise VersionConflict(f"{unmatched.count} dossier(s) modifié(s) pendant le traitement")
        if self.closed_requests:
            stmt = (update(REQUESTS)
                    .where(REQUESTS.c.dossier_id == bindparam("b_dossier"), REQUESTS.c.status == "open")
                    .values(status=bindparam("b_status"), closed_at=bindparam("b_closed", type_=Instant())))
            session.execute(stmt, self.closed_requests)
            executed += 1
        if self.events:
            session.execute(insert(EVENTS), self.events)
            executed += 1
        if self.notifications:
            session.execute(insert(NOTIFICATIONS), self.notifications)
            executed += 1
        return executed


__all__ = ["BatchWriter", "VersionConflict", "notification_row", "officer_recipient", "company_recipient",
           "dossier_stand_in", "letter_context"]
