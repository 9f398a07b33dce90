"""The ways out of a dossier other than its last payment: the company withdraws, the
system lapses it or sends a reminder of a document request, and closes it when the payment
deadline has passed with nothing pending."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from db import models as m
from rules.errors import NotAllowed
from services.clock import Clock
from services.commands.base import _OPEN_REQUESTS, SYSTEM, Actor, Outcome, _Command, _commit, _reason
from services.commands.payments import _claims, _close
from services.uow import UnitOfWork


def withdraw(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, reason: str,
             expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    reason = _reason(reason)
    cmd.move("withdraw")
    cmd.dossier.closed_at = cmd.now
    _close_requests(cmd, "closed")
    cmd.record("withdraw", {}, reason)
    _commit(uow, dossier_id)
    return cmd.outcome()


def _close_requests(cmd: _Command, status: str) -> None:
    # No autoflush: the dossier's change is flushed once, with its event, so that its version
    # counts its events (`services.audit.verify` tells a cut tail from a backdated last event by it).
    with cmd.session.no_autoflush:
        requests = cmd.session.scalars(_OPEN_REQUESTS, {"dossier_id": cmd.dossier.id}).all()
    for req in requests:
        req.status = status
        req.closed_at = cmd.now


def lapse(*, uow: UnitOfWork, clock: Clock, dossier_id: int, reason: str, request_id: int | None = None,
          actor: Actor = SYSTEM) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, None)
    cmd.move("lapse")
    cmd.dossier.closed_at = cmd.now
    _close_requests(cmd, "lapsed")
    cmd.record("lapse", {"request_id": request_id}, reason)
    cmd.notify("dossier_lapsed", "lapsed", reason=reason, lapsed_on=cmd.today.isoformat())
    _commit(uow, dossier_id)
    return cmd.outcome()


def remind(*, uow: UnitOfWork, clock: Clock, dossier_id: int, request_id: int, after_days: int, kind: str,
           actor: Actor = SYSTEM) -> Outcome | None:
    """Send one reminder step of one document request, once: None when it was already sent."""
    cmd = _Command(uow, clock, actor, dossier_id, None)
    req = cmd.session.get(m.DocumentRequest, request_id)
    cmd.move("remind")
    try:
        note = cmd.notify(kind, f"docreq:{request_id}:{after_days}", kinds=req.kinds,
                          requested_on=req.requested_on.isoformat(), lapse_on=req.lapse_on.isoformat(),
                          step_day=after_days)
        if note is None:
            return None
        cmd.record("remind", {"request_id": request_id, "after_days": after_days, "kind": kind})
        _commit(uow, dossier_id)
    except IntegrityError:  # another sweep queued it first
        uow.rollback()
        return None
    return cmd.outcome()


def close_after_payment_deadline(*, uow: UnitOfWork, clock: Clock, dossier_id: int,
                                 actor: Actor = SYSTEM) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, None)
    pending = [c for c in _claims(cmd.session, cmd.dossier.id) if c.status == "pending"]
    if pending:
        raise NotAllowed("Une demande de paiement est en attente : le dossier sera clôturé après son paiement.")
    cmd.move("close")
    _close(cmd, reason="délai de paiement expiré")
    cmd.record("close", {"cause": "payment_deadline", "payment_deadline_on": cmd.dossier.payment_deadline_on.isoformat(),
                         "cancelled_remainder": str(cmd.dossier.cancelled_remainder)},
               "délai de demande de solde expiré : le reliquat est annulé")
    _commit(uow, dossier_id)
    return cmd.outcome()
