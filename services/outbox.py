"""Queueing notifications in the outbox, in the command's own transaction.

The message is rendered now (so a missing template variable refuses the command instead of
sending an empty letter later) and stored with its template hash; delivery only sends."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

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
    }


def enqueue(session, *, kind: str, dedupe_key: str, now: datetime, recipient: dict, context: dict,
            dossier: m.Dossier | None = None) -> m.Notification | None:
    """Queue one message; None when a message with this key was already queued (idempotent)."""
    # The key names the message (dossier, step, request…): nothing pending in this session can
    # match it but a message queued earlier in the same unit of work, checked first, so the
    # query need not flush the command's other changes.
    if any(isinstance(o, m.Notification) and o.dedupe_key == dedupe_key for o in session.new):
        return None
    with session.no_autoflush:
        exists = session.scalar(select(m.Notification.id).where(m.Notification.dedupe_key == dedupe_key))
    if exists is not None:
        return None
    context = {**context, "recipient": recipient}
    rendered = render(kind, context)
    note = m.Notification(
        dossier_id=dossier.id if dossier is not None else None, kind=kind, dedupe_key=dedupe_key,
        recipient_role=recipient["role"], recipient_name=recipient["name"],
        recipient_address=recipient["email"], subject=rendered.subject, body_text=rendered.text,
        body_html=rendered.html, template_hash=rendered.template_hash, context=context,
        status="queued", attempts=0, next_attempt_at=now, created_at=now,
    )
    session.add(note)
    return note
