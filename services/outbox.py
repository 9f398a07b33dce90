"""Queueing notifications in the outbox, in the command's own transaction.

The message is rendered now (so a missing template variable refuses the command instead of
sending an empty letter later) and stored with its template hash; delivery only sends."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select, text

from db import models as m
from notifications.rendering import render
from states.lifecycle import STATE_LABELS


def applicant_recipient(dossier: m.Dossier) -> dict:
    facts = dossier.company_facts
    address = facts.get("email") or f"contact+{facts['siren']}@entreprises.usine.invalid"
    return {"role": "applicant", "name": facts["name"], "email": address}


def dossier_context(dossier: m.Dossier, programme) -> dict:
    facts = dossier.company_facts
    return {
        "reference": dossier.reference, "programme_id": programme.id, "programme_name": programme.name,
        "region": programme.region, "company_name": facts["name"], "siren": facts["siren"],
        "state": dossier.status, "state_label": STATE_LABELS[dossier.status],
        # SPEC §11: every letter of a dossier under an example programme says so.
        "example": programme.status == "example",
        # The applicant portal's page of the dossier, where the company does what a letter asks.
        "portal_url": portal_url(dossier.reference),
    }


def portal_url(reference: str, page: str = "") -> str:
    """The absolute address of a dossier's page in the applicant portal (web/routes_portal.py):
    `page` « pieces » for the upload page, else the dossier's page."""
    from services.config import public_url

    return f"{public_url()}/ui/portail/dossiers/{reference}" + (f"/{page}" if page else "")


def notification_row(*, kind: str, dedupe_key: str, now: datetime, recipient: dict, context: dict,
                     dossier_id: int | None) -> dict:
    """One outbox row, rendered now: what `enqueue` writes for a command and the batch writer
    (`services.bulk`) for a sweep."""
    context = {**context, "recipient": recipient}
    rendered = render(kind, context)
    return {
        "dossier_id": dossier_id, "kind": kind, "dedupe_key": dedupe_key,
        "recipient_role": recipient["role"], "recipient_name": recipient["name"],
        "recipient_address": recipient["email"], "subject": rendered.subject, "body_text": rendered.text,
        "body_html": rendered.html, "template_hash": rendered.template_hash,
        "context": context,
        "status": "queued", "attempts": 0, "next_attempt_at": now, "last_error": None,
        "created_at": now, "sent_at": None,
    }


NOTIFICATIONS = m.Notification.__table__
_ROW_COLUMNS = [c for c in NOTIFICATIONS.columns if c.key != "id"]
# The same statement on SQLite (≥ 3.24) and PostgreSQL. Written as text with typed parameters
# because SQLAlchemy 2.0 cannot cache an `insert(…).on_conflict_do_nothing()`: it compiled the
# statement anew at every command (5 % of a command's CPU).
_INSERT_ONCE_SQL = text(
    f"INSERT INTO {NOTIFICATIONS.name} ({', '.join(c.name for c in _ROW_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c.key for c in _ROW_COLUMNS)}) ON CONFLICT (dedupe_key) DO NOTHING"
).bindparams(*(bindparam(c.key, type_=c.type) for c in _ROW_COLUMNS))
_INSERT_ONCE_DIALECTS = frozenset({"sqlite", "postgresql"})
_QUEUED_WITH_KEY = select(NOTIFICATIONS.c.id).where(NOTIFICATIONS.c.dedupe_key == bindparam("dedupe_key"))


def enqueue(session, *, kind: str, dedupe_key: str, now: datetime, recipient: dict, context: dict,
            dossier: m.Dossier | None = None) -> dict | None:
    """Queue one message in the session's transaction; None when a message with this key was
    already queued (idempotent). The row goes in with one Core INSERT: the outbox is append-only
    here, so it needs no place in the ORM's identity map, and the command's flush stays small.
    On SQLite and PostgreSQL the duplicate check is the INSERT itself (ON CONFLICT DO NOTHING)."""
    row = notification_row(kind=kind, dedupe_key=dedupe_key, now=now, recipient=recipient, context=context,
                           dossier_id=dossier.id if dossier is not None else None)
    if session.get_bind().dialect.name in _INSERT_ONCE_DIALECTS:
        # One statement: the unique key refuses a second copy without an error, so a key queued
        # by an earlier transaction (or a concurrent one, once it commits) leaves this one intact.
        if session.execute(_INSERT_ONCE_SQL, row).rowcount == 0:
            return None
    else:
        with session.no_autoflush:
            if session.scalar(_QUEUED_WITH_KEY, {"dedupe_key": dedupe_key}) is not None:
                return None
        session.execute(insert(NOTIFICATIONS), [row])
    return row
