"""Scheduled sweeps (SPEC §5): what time does to dossiers without anyone watching.

Each sweep finds what is due with a fixed number of set-based queries, whatever the number of
dossiers, then runs the same command functions as everyone else, one unit of work per due item:
a sweep killed half-way loses nothing (done items are committed) and a sweep run twice doubles
nothing (the outbox's unique keys, and the lifecycle refusing to lapse a lapsed dossier)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from sqlalchemy import select

from db import models as m
from rules.calendar import deadline, paris_date
from rules.errors import ConcurrencyConflict, RuleViolation
from services import commands
from services.clock import Clock
from services.uow import UnitOfWork
from states.lifecycle import OPEN_STATES


@dataclass
class SweepReport:
    as_of: date
    reminders: int = 0
    final_notices: int = 0
    lapsed: int = 0
    closed_after_deadline: int = 0
    skipped: int = 0
    queries: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "reminders": self.reminders, "final_notices": self.final_notices,
                "lapsed": self.lapsed, "closed_after_deadline": self.closed_after_deadline,
                "skipped": self.skipped, "errors": self.errors}


@dataclass(frozen=True)
class DueReminder:
    dossier_id: int
    request_id: int
    after_days: int
    kind: str


@dataclass(frozen=True)
class DueLapse:
    dossier_id: int
    request_id: int
    lapse_on: date


def due_document_actions(uow_factory: Callable[[], UnitOfWork], today: date,
                         batch_size: int = 5000) -> tuple[list[DueReminder], list[DueLapse], int]:
    """Open requests whose next step is due today: one query for the requests, one for the
    reminders already queued — per batch of `batch_size` requests."""
    reminders: list[DueReminder] = []
    lapses: list[DueLapse] = []
    queries = 0
    with uow_factory() as uow:
        catalogue = uow.catalogue
        # The earliest possible step of any programme bounds what can be due today.
        last_id = 0
        while True:
            rows = uow.session.execute(
                select(m.DocumentRequest.id, m.DocumentRequest.dossier_id, m.DocumentRequest.requested_on,
                       m.DocumentRequest.lapse_on, m.Dossier.programme_id, m.Dossier.programme_version,
                       m.Dossier.reference)
                .join(m.Dossier, m.Dossier.id == m.DocumentRequest.dossier_id)
                .where(m.DocumentRequest.status == "open", m.Dossier.status.in_(OPEN_STATES),
                       m.DocumentRequest.requested_on <= date.fromordinal(today.toordinal() - 1),
                       m.DocumentRequest.id > last_id)
                .order_by(m.DocumentRequest.id).limit(batch_size)
            ).all()
            queries += 1
            if not rows:
                break
            last_id = rows[-1].id
            candidates: list[tuple] = []
            for row in rows:
                if row.lapse_on <= today:
                    lapses.append(DueLapse(row.dossier_id, row.id, row.lapse_on))
                    continue
                r = catalogue.get(row.programme_id, row.programme_version).reminders
                due = [s for s in r.steps
                       if deadline(row.requested_on, s.after_days, shift_to_working_day=r.shift_to_working_day) <= today]
                if due:
                    # Only the latest step due: after an outage nobody gets two letters the same day.
                    step = due[-1]
                    candidates.append((row, step, f"{row.reference}:docreq:{row.id}:{step.after_days}"))
            if candidates:
                sent = set(uow.session.scalars(select(m.Notification.dedupe_key).where(
                    m.Notification.dedupe_key.in_([c[2] for c in candidates]))).all())
                queries += 1
                reminders.extend(DueReminder(row.dossier_id, row.id, step.after_days, step.kind)
                                 for row, step, key in candidates if key not in sent)
            if len(rows) < batch_size:
                break
    return reminders, lapses, queries


def due_payment_deadlines(uow_factory: Callable[[], UnitOfWork], today: date) -> tuple[list[int], int]:
    with uow_factory() as uow:
        pending = select(m.PaymentClaim.dossier_id).where(m.PaymentClaim.status == "pending")
        ids = uow.session.scalars(select(m.Dossier.id).where(
            m.Dossier.status.in_(("approved", "in_payment")), m.Dossier.payment_deadline_on < today,
            m.Dossier.id.not_in(pending)).order_by(m.Dossier.id)).all()
    return list(ids), 1


def sweep(*, uow_factory: Callable[[], UnitOfWork], clock: Clock) -> SweepReport:
    """Every sweep once, as of the clock's instant."""
    today = paris_date(clock.now())
    report = SweepReport(today)
    reminders, lapses, q1 = due_document_actions(uow_factory, today)
    for due in reminders:
        try:
            with uow_factory() as uow:
                done = commands.remind(uow=uow, clock=clock, dossier_id=due.dossier_id, request_id=due.request_id,
                                       after_days=due.after_days, kind=due.kind)
        except (RuleViolation, ConcurrencyConflict) as exc:
            report.errors.append(f"relance {due.request_id}: {exc}")
            continue
        if done is None:
            report.skipped += 1
        elif due.kind == "documents_final_notice":
            report.final_notices += 1
        else:
            report.reminders += 1
    for due in lapses:
        try:
            with uow_factory() as uow:
                commands.lapse(uow=uow, clock=clock, dossier_id=due.dossier_id, request_id=due.request_id,
                               reason=f"pièces demandées non fournies au {due.lapse_on:%d/%m/%Y}")
            report.lapsed += 1
        except (RuleViolation, ConcurrencyConflict) as exc:
            report.skipped += 1
    closing, q2 = due_payment_deadlines(uow_factory, today)
    for dossier_id in closing:
        try:
            with uow_factory() as uow:
                commands.close_after_payment_deadline(uow=uow, clock=clock, dossier_id=dossier_id)
            report.closed_after_deadline += 1
        except (RuleViolation, ConcurrencyConflict):
            report.skipped += 1
    report.queries = q1 + q2
    return report
