"""The officers' daily digest: each officer gets the list of their dossiers with a deadline in
the next 7 days (the officer is the one who took the dossier for review).

Deadlines gathered, each with what it calls for:

* an open document request's lapse day — the dossier lapses if the pieces do not arrive;
* the closing of a council session's agenda, for dossiers still at the action-plan stage;
* the balance claim deadline of a voted dossier;
* the two months after a pending payment claim, after which silence means refusal
  (CRPA L231-4: silence is never approval).

Set-based: four queries whatever the number of dossiers, plus one to skip the officers already
served today, then one insert. One digest per officer and day (unique key
`digest:{day}:{officer}`): a second run the same day queues nothing."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from sqlalchemy import and_, insert, select
from sqlalchemy.exc import IntegrityError

from db import models as m
from rules.calendar import PARIS, add_months, is_working_day, paris_date
from services.bulk import NOTIFICATIONS, notification_row, officer_recipient
from services.clock import Clock
from services.people import display_names
from services.uow import UnitOfWork
from states.lifecycle import OPEN_STATES

HORIZON_DAYS = 7
SILENCE_MONTHS = 2  # CRPA L231-4

D, R, S, P = m.Dossier, m.DocumentRequest, m.CouncilSession, m.PaymentClaim


@dataclass
class DigestReport:
    for_date: date
    officers: int = 0
    items: int = 0
    queued: int = 0
    skipped_non_working_day: bool = False
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"for_date": self.for_date.isoformat(), "officers": self.officers, "items": self.items,
                "queued": self.queued, "skipped_non_working_day": self.skipped_non_working_day,
                "errors": self.errors}


def digest_key(for_date: date, officer: str) -> str:
    return f"digest:{for_date.isoformat()}:{officer[:100]}"


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(timezone.utc)


def officer_deadlines(session, today: date, horizon_days: int = HORIZON_DAYS) -> dict[str, list[dict]]:
    """officer name -> items {reference, company_name, state, deadline, what}, deadline first."""
    until = today + timedelta(days=horizon_days)
    items: dict[str, list[dict]] = {}

    def add(row, deadline: date, what: str) -> None:
        items.setdefault(row.officer, []).append({
            "reference": row.reference, "company_name": row.company_facts["name"], "state": row.status,
            "deadline": deadline.isoformat(), "what": what})

    base = (D.officer.is_not(None), D.status.in_(OPEN_STATES))
    for row in session.execute(
            select(D.officer, D.reference, D.company_facts, D.status, R.lapse_on)
            .join(R, R.dossier_id == D.id)
            .where(*base, R.status == "open", R.lapse_on >= today, R.lapse_on <= until)):
        add(row, row.lapse_on, "pièces demandées non reçues : le dossier devient caduc à cette date")
    for row in session.execute(
            select(D.officer, D.reference, D.company_facts, D.status, S.code, S.agenda_closes_on)
            .join(S, and_(S.programme_id == D.programme_id, S.agenda_closes_on >= today, S.agenda_closes_on <= until))
            .where(*base, D.status == "action_plan")):
        add(row, row.agenda_closes_on, f"clôture de l'ordre du jour de la séance {row.code} : proposer au vote avant")
    for row in session.execute(
            select(D.officer, D.reference, D.company_facts, D.status, D.payment_deadline_on)
            .where(*base, D.status.in_(("approved", "in_payment")), D.payment_deadline_on >= today,
                   D.payment_deadline_on <= until)):
        add(row, row.payment_deadline_on, "date limite de la demande de solde")
    # Claims made between (today − 2 months − 1 day) and (until − 2 months + 1 day), Paris time;
    # the exact day is checked below.
    earliest = _paris_midnight(add_months(today, -SILENCE_MONTHS) - timedelta(days=1))
    latest = _paris_midnight(add_months(until, -SILENCE_MONTHS) + timedelta(days=2))
    for row in session.execute(
            select(D.officer, D.reference, D.company_facts, D.status, P.claimed_at, P.phase, P.kind)
            .join(P, P.dossier_id == D.id)
            .where(*base, P.status == "pending", P.claimed_at >= earliest, P.claimed_at < latest)):
        due = add_months(paris_date(row.claimed_at), SILENCE_MONTHS)
        if today <= due <= until:
            what = (f"demande de paiement ({'avance' if row.kind == 'advance' else 'solde'}, phase {row.phase}) "
                    "sans réponse : le silence vaudrait rejet")
            add(row, due, what)
    for officer_items in items.values():
        officer_items.sort(key=lambda i: (i["deadline"], i["reference"], i["what"]))
    return items


def queue_daily_digests(*, uow_factory: Callable[[], UnitOfWork], clock: Clock, horizon_days: int = HORIZON_DAYS,
                        working_days_only: bool = True, include_empty: bool = False) -> DigestReport:
    """Queue today's digest of every officer who has a deadline within `horizon_days`
    (every officer with an open dossier when `include_empty`). Nothing on weekends and French
    public holidays unless `working_days_only` is False."""
    now = clock.now()
    today = paris_date(now)
    report = DigestReport(today)
    if working_days_only and not is_working_day(today):
        report.skipped_non_working_day = True
        return report
    for _attempt in range(3):
        with uow_factory() as uow:
            session = uow.session
            by_officer = officer_deadlines(session, today, horizon_days)
            if include_empty:
                for officer in session.scalars(select(D.officer).distinct()
                                               .where(D.officer.is_not(None), D.status.in_(OPEN_STATES))):
                    by_officer.setdefault(officer, [])
            prefix = f"digest:{today.isoformat()}:"
            done = set(session.scalars(select(m.Notification.dedupe_key)
                                       .where(m.Notification.dedupe_key.startswith(prefix, autoescape=True))))
            rows = []
            people = display_names(session, by_officer)
            for officer in sorted(by_officer):
                key = digest_key(today, officer)
                if key in done:
                    continue
                items = by_officer[officer]
                try:
                    rows.append(notification_row(
                        kind="daily_digest", dedupe_key=key, now=now, recipient={**officer_recipient(officer), "name": people.get(officer, officer)},
                        context={"officer_name": people.get(officer, officer), "for_date": today.isoformat(),
                                 "items": items},
                        dossier_id=None))
                except (ValueError, LookupError) as exc:
                    report.errors.append(f"récapitulatif de {officer} : {exc}")
                    continue
                report.items += len(items)
            report.officers = len(by_officer)
            try:
                if rows:
                    session.execute(insert(NOTIFICATIONS), rows)
                uow.commit()
            except IntegrityError:  # a concurrent run queued some of them first: read again
                uow.rollback()
                report.items = 0
                continue
            report.queued = len(rows)
            return report
    report.errors.append("récapitulatifs : abandon après 3 conflits avec une exécution concurrente")
    return report
