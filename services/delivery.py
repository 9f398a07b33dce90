"""Delivery: the outbox (`notifications` rows, rendered when queued) to an SMTP server.

    report = deliver(uow_factory=..., sender=SmtpSender(...), clock=...)

How a batch goes:

1. *Claim* (one short transaction): the queued rows whose `next_attempt_at` has come, oldest
   first, are leased — their `next_attempt_at` moves `lease` ahead — so that a concurrent
   delivery run (another worker, a manual `usine deliver`) does not take them too. On PostgreSQL
   the claim skips rows another run is claiming (`FOR UPDATE SKIP LOCKED`); SQLite serialises
   writers anyway.
2. *Send*, one SMTP session for the batch, and **commit each message's new state right after
   its own send**: `sent` (with `sent_at`) on success; on a temporary failure `attempts + 1`,
   `last_error` and `next_attempt_at = now + backoff` (exponential: 1, 2, 4, 8… minutes, capped);
   on a permanent failure (a 5xx for this message) or after `max_attempts`, `dead` — kept, with
   its error, listed by `usine notifications dead` and re-queued by `usine notifications retry`.
3. After `stop_after_failures` temporary failures in a row the server is taken as down: the rest
   of the batch is released untouched (no attempt counted) and the run stops.

A crash loses nothing: a message is `sent` only once the server accepted it, and a leased row
that was never sent is taken again when its lease expires. A re-run re-sends nothing marked
`sent`. The one window SMTP leaves open — the server accepted the message and the process died
before the commit — re-sends that one message after the lease, with the same `Message-ID`
(`<usine.{dedupe_key}@domain>`), which lets mail clients recognise the duplicate."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update

from db import models as m
from notifications.email import DeliveryError, OutgoingEmail, envelope_address, make_message_id
from services.clock import Clock
from services.uow import UnitOfWork

N = m.Notification

DEFAULT_BATCH_SIZE = 50
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=6)
LEASE = timedelta(minutes=10)
STOP_AFTER_FAILURES = 3


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    batches: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sent": self.sent, "retried": self.retried, "dead": self.dead, "released": self.released,
                "batches": self.batches, "stopped": self.stopped, "errors": self.errors}


def backoff(attempts: int, base: timedelta = BASE_DELAY, cap: timedelta = MAX_DELAY) -> timedelta:
    """Delay before the next try after `attempts` failed ones: base × 2^(attempts−1), capped."""
    return min(base * (2 ** max(attempts - 1, 0)), cap)


def sender_from_settings(settings=None):
    """The SMTP sender the settings describe (USINE_SMTP_HOST, _PORT, _FROM, _STARTTLS,
    _USERNAME, _PASSWORD)."""
    from notifications.smtp import SmtpSender
    from services.config import get_settings

    s = settings or get_settings()
    return SmtpSender(s.smtp_host, s.smtp_port, s.smtp_from, starttls=s.smtp_starttls,
                      username=s.smtp_username, password=s.smtp_password)


def message_domain(sender) -> str:
    address = getattr(sender, "envelope_from", None) or envelope_address(sender.from_address)
    return address.rsplit("@", 1)[1]


def letter_attachments(row, date: datetime | None) -> tuple[tuple[str, str, bytes], ...]:
    """A decision or an accusé de réception goes with its PDF: the row's own subject and text
    body laid out (`services.letters`), so the attachment says exactly what the e-mail says."""
    from services.letters import PDF_KINDS, letter_pdf_from_text

    if row.kind not in PDF_KINDS:
        return ()
    from rules.calendar import paris_date

    dated = paris_date(date) if date is not None else None
    reference = row.dedupe_key.split(":", 1)[0]  # a dossier's letters are keyed "REFERENCE:…"
    pdf, filename = letter_pdf_from_text(row.kind, reference, row.subject, row.body_text, dated)
    return ((filename, "application/pdf", pdf),)


def outgoing(row, domain: str, date: datetime | None = None) -> OutgoingEmail:
    return OutgoingEmail(date=date, attachments=letter_attachments(row, date),
        to_address=row.recipient_address, to_name=row.recipient_name, subject=row.subject, text=row.body_text,
        html=row.body_html, message_id=make_message_id(row.dedupe_key, domain),
        headers={"X-Usine-Notification-Kind": row.kind, "X-Usine-Template-Hash": row.template_hash,
                 "X-Usine-Notification-Id": str(row.id)})


def _claim(uow_factory, now: datetime, batch_size: int, lease: timedelta) -> list:
    with uow_factory() as uow:
        session = uow.session
        rows = session.execute(
            select(N.id, N.kind, N.dedupe_key, N.recipient_address, N.recipient_name, N.subject, N.body_text,
                   N.body_html, N.template_hash, N.attempts)
            .where(N.status == "queued", N.next_attempt_at <= now)
            .order_by(N.next_attempt_at, N.id).limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            session.execute(update(N).where(N.id.in_([r.id for r in rows]), N.status == "queued")
                            .values(next_attempt_at=now + lease))
        uow.commit()
    return rows


def _record(uow_factory, notification_id: int, **values) -> None:
    with uow_factory() as uow:
        uow.session.execute(update(N).where(N.id == notification_id, N.status == "queued").values(**values))
        uow.commit()


def _release(uow_factory, ids: list[int], now: datetime) -> None:
    if not ids:
        return
    with uow_factory() as uow:
        uow.session.execute(update(N).where(N.id.in_(ids), N.status == "queued").values(next_attempt_at=now))
        uow.commit()


def deliver(*, uow_factory: Callable[[], UnitOfWork], sender, clock: Clock, batch_size: int = DEFAULT_BATCH_SIZE,
            max_batches: int | None = None, max_attempts: int = MAX_ATTEMPTS, base_delay: timedelta = BASE_DELAY,
            max_delay: timedelta = MAX_DELAY, lease: timedelta = LEASE,
            stop_after_failures: int = STOP_AFTER_FAILURES) -> DeliveryReport:
    """Send what is due in the outbox, batch after batch, until nothing is due (or `max_batches`)."""
    report = DeliveryReport()
    domain = message_domain(sender)
    while max_batches is None or report.batches < max_batches:
        now = clock.now()
        rows = _claim(uow_factory, now, batch_size, lease)
        if not rows:
            break
        report.batches += 1
        pending = [r.id for r in rows]
        try:
            with sender.connect() as connection:
                failures_in_a_row = 0
                for row in rows:
                    try:
                        connection.send(outgoing(row, domain, clock.now()))
                    except DeliveryError as exc:
                        pending.remove(row.id)
                        attempts = row.attempts + 1
                        at = clock.now()
                        if exc.permanent or attempts >= max_attempts:
                            _record(uow_factory, row.id, status="dead", attempts=attempts, last_error=str(exc)[:2000])
                            report.dead += 1
                        else:
                            _record(uow_factory, row.id, attempts=attempts, last_error=str(exc)[:2000],
                                    next_attempt_at=at + backoff(attempts, base_delay, max_delay))
                            report.retried += 1
                        failures_in_a_row = 0 if exc.permanent else failures_in_a_row + 1
                        if failures_in_a_row >= stop_after_failures:
                            report.stopped = f"{failures_in_a_row} échecs temporaires de suite : {exc.detail}"
                            break
                        continue
                    except ValueError as exc:  # a message the MIME builder refuses: never sendable
                        pending.remove(row.id)
                        _record(uow_factory, row.id, status="dead", attempts=row.attempts + 1,
                                last_error=f"message invalide : {exc}"[:2000])
                        report.dead += 1
                        continue
                    # Accepted by the server: recorded at once, before the next message.
                    _record(uow_factory, row.id, status="sent", sent_at=clock.now(), attempts=row.attempts + 1,
                            last_error=None)
                    pending.remove(row.id)
                    report.sent += 1
                    failures_in_a_row = 0
        except DeliveryError as exc:  # no session at all (server down, refused greeting, bad login)
            report.stopped = f"connexion impossible : {exc.detail}"
        finally:
            # Leased but not tried (server down, or an unexpected error): back in the queue now.
            _release(uow_factory, pending, now)
            report.released += len(pending)
        if report.stopped:
            break
    return report


# -- reading the outbox (CLI, API) ------------------------------------------------------------------

def list_notifications(uow, *, status: str | None = None, dossier_id: int | None = None, kind: str | None = None,
                       limit: int = 50, offset: int = 0) -> list[dict]:
    stmt = select(N).order_by(N.id.desc()).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(N.status == status)
    if dossier_id is not None:
        stmt = stmt.where(N.dossier_id == dossier_id)
    if kind:
        stmt = stmt.where(N.kind == kind)
    return [{"id": n.id, "kind": n.kind, "status": n.status, "dossier_id": n.dossier_id, "key": n.dedupe_key,
             "to": n.recipient_address, "role": n.recipient_role, "subject": n.subject, "attempts": n.attempts,
             "next_attempt_at": n.next_attempt_at.isoformat() if n.next_attempt_at else None,
             "created_at": n.created_at.isoformat(), "sent_at": n.sent_at.isoformat() if n.sent_at else None,
             "last_error": n.last_error, "template_hash": n.template_hash}
            for n in uow.session.scalars(stmt)]


def requeue_dead(*, uow_factory: Callable[[], UnitOfWork], clock: Clock, notification_id: int) -> bool:
    """Put a dead letter back in the queue (after fixing an address, say): attempts start again."""
    with uow_factory() as uow:
        result = uow.session.execute(update(N).where(N.id == notification_id, N.status == "dead")
                                     .values(status="queued", attempts=0, next_attempt_at=clock.now()))
        uow.commit()
    return result.rowcount == 1
