"""Read side: what a dossier looks like now, for the CLI, the API and the scenario runner."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

from sqlalchemy import func, select

from db import models as m
from programmes import EXAMPLE_NOTICE
from rules.money import aid_figures
from services.uow import UnitOfWork
from states.lifecycle import STATE_LABELS

# Before the vote the proposal is what the amounts would be: from the eligibility decision (an
# estimate at its date) and frozen at the proposal.
ESTIMATED_STATES = ("diagnostic", "action_plan", "instruction", "ready_for_vote")


def aid_of(dossier: m.Dossier) -> dict | None:
    """What the council voted; before the vote, what the proposal computes."""
    record = dossier.voted or (dossier.proposal if dossier.status in ESTIMATED_STATES else None)
    if not record or "lines" not in record:
        return None
    return aid_figures(record)


def aid_shown(dossier: m.Dossier) -> Decimal | None:
    """The aid a list of dossiers shows (the queue and its exports): the voted total stored on the
    dossier, else what its proposal computes (`aid_of`) — read from the row, no query."""
    if dossier.aid_total is not None:
        return Decimal(dossier.aid_total)
    figures = aid_of(dossier)
    return Decimal(figures["total"]) if figures else None


def adjustments_of(session, dossier: m.Dossier) -> list[dict]:
    out = []
    record = dossier.voted or dossier.proposal
    if record:
        out += [{k: a[k] for k in ("rule", "phase", "base", "amount")} for a in record.get("adjustments", [])]
    for claim in session.scalars(select(m.PaymentClaim).where(m.PaymentClaim.dossier_id == dossier.id)
                                 .order_by(m.PaymentClaim.id)):
        if claim.assessment:
            out += [{k: a[k] for k in ("rule", "phase", "base", "amount")} for a in claim.assessment["adjustments"]]
    return out


def notification_counts(session, dossier_id: int) -> dict[str, int]:
    rows = session.execute(select(m.Notification.kind, func.count()).where(m.Notification.dossier_id == dossier_id)
                           .group_by(m.Notification.kind)).all()
    return dict(sorted(Counter({k: n for k, n in rows}).items()))


def dossier_summary(uow: UnitOfWork, dossier_id: int) -> dict:
    s = uow.session
    d = uow.dossier(dossier_id)
    programme = uow.catalogue.get(d.programme_id, d.programme_version)
    events = s.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == d.id))
    from services.loans import loan_figures

    return {
        "id": d.id, "reference": d.reference, "programme": f"{d.programme_id}@v{d.programme_version}",
        "company": d.company_facts["name"], "siren": d.company_facts["siren"],
        "state": d.status, "state_label": STATE_LABELS[d.status], "version": d.version,
        "officer": d.officer, "consultant": d.consultant, "size_class": d.size_class,
        "aid": aid_of(d), "paid": str(d.paid_total - d.recovered_total),
        "cancelled_remainder": None if d.cancelled_remainder is None else str(d.cancelled_remainder),
        "deliberation": d.deliberation,
        "payment_deadline_on": d.payment_deadline_on.isoformat() if d.payment_deadline_on else None,
        "adjustments": adjustments_of(s, d), "notifications": notification_counts(s, d.id), "events": events,
        "submitted_at": d.submitted_at.isoformat(), "updated_at": d.updated_at.isoformat(),
        "line": d.line, "call": d.call_code, "loan": loan_figures(s, d),
        **({"avertissement": EXAMPLE_NOTICE} if programme.is_example else {}),
    }


def history(uow: UnitOfWork, dossier_id: int) -> list[dict]:
    d = uow.dossier(dossier_id)
    rows = uow.session.scalars(select(m.Event).where(m.Event.dossier_id == d.id).order_by(m.Event.seq)).all()
    return [{"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "role": e.role, "command": e.command,
             "state_before": e.state_before, "state_after": e.state_after, "data": e.data, "reason": e.reason,
             "hash": e.hash, "prev_hash": e.prev_hash} for e in rows]


def list_dossiers(uow: UnitOfWork, *, state: str | None = None, programme: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict]:
    q = select(m.Dossier).order_by(m.Dossier.id)
    if state:
        q = q.where(m.Dossier.status == state)
    if programme:
        q = q.where(m.Dossier.programme_id == programme)
    rows = uow.session.scalars(q.limit(limit).offset(offset)).all()
    return [{"id": d.id, "reference": d.reference, "programme": d.programme_id, "company": d.company_facts["name"],
             "state": d.status, "aid_total": None if d.aid_total is None else str(d.aid_total),
             "paid": str(d.paid_total - d.recovered_total)} for d in rows]
