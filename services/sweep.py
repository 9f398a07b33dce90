"""Scheduled sweeps (SPEC §5): what time does to dossiers without anyone watching.

Five sweeps, run in this order by `sweep()` (and one by one by the Prefect flow):

* `documents` — reminders of an open document request at J+7 and J+14, final notice at J+21
  (the programme's `reminders.steps`, the day moved to the next working day when the programme
  says so); only the latest step due is sent, so after an outage nobody gets two letters;
* `lapses` — a request still open on its lapse day (J+30, working day) lapses the dossier;
* `payment_deadlines` — past the balance deadline with no pending claim, the dossier closes and
  its unpaid remainder is cancelled;
* `windows` — AMI window opening notice (to the companies that have a dossier in the
  programme) and closing notice (to those whose candidacy is still a draft);
* `agendas` — a council session's agenda closes soon: each officer gets the list of their
  dossiers still at the action-plan stage.

Set-based and batched: each batch is one transaction made of one query that finds the due
items (whatever the number of dossiers; the items already done are excluded by the query
itself, through the outbox's unique keys and the dossiers' states) and at most four writing
statements (`services.bulk.BatchWriter`: dossiers, document requests, events, outbox). The
number of statements therefore depends on the number of batches — one per `batch_size` due
items — never on the number of dossiers.

Idempotent and crash-safe: a batch commits whole or not at all, so a sweep killed half-way
keeps the batches it committed and the next run does the rest; a second sweep, concurrent or
later, finds nothing left to do, and if it raced the first one to the same items, the unique
keys (outbox `dedupe_key`, event `(dossier_id, seq)`) or the dossier's version refuse its batch,
which is rolled back and read again."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import String, and_, case, cast, exists, func, literal, select
from sqlalchemy.exc import IntegrityError, OperationalError

from db import models as m
from db.models_auth import User
from programmes import Programme
from rules import french, settlement
from rules.calendar import paris_date
from rules.documents import reminder_due_on
from rules.errors import RuleViolation
from rules.money import ZERO
from services import deadlines
from services.bulk import (
    BatchWriter,
    VersionConflict,
    company_recipient,
    dossier_stand_in,
    letter_context,
    notification_row,
    officer_recipient,
)
from services.clock import Clock
from services.metrics import observed_sweep
from services.outbox import applicant_recipient
from services.uow import UnitOfWork
from states.lifecycle import EXIT_STATES, LOAN_STATES, OPEN_STATES, fire

PARTS = ("documents", "lapses", "payment_deadlines", "windows", "agendas", "loans")

DEFAULT_BATCH_SIZE = 5000
# Not in the programme files yet (their schema is closed): Usine-wide choices, see docs/flows.md.
# The notices' lead times are the programme's (`[notices]` of its file).
MAX_ATTEMPTS = 10                # a batch refused by a concurrent writer is read again, up to 10 times

D, R, N, E = m.Dossier, m.DocumentRequest, m.Notification, m.Event
C, S = m.Company, m.CouncilSession


@dataclass
class SweepReport:
    as_of: date
    reminders: int = 0
    final_notices: int = 0
    lapsed: int = 0
    closed_after_deadline: int = 0
    window_notices: int = 0
    agenda_reminders: int = 0
    loan_notices: int = 0    # repayment due notices and reminders (SPEC §11.3)
    loan_defaults: int = 0
    skipped: int = 0
    batches: int = 0
    retries: int = 0
    queries: int = 0   # statements the sweep executed (reads and writes), BEGIN/COMMIT aside
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "reminders": self.reminders, "final_notices": self.final_notices,
                "lapsed": self.lapsed, "closed_after_deadline": self.closed_after_deadline,
                "window_notices": self.window_notices, "agenda_reminders": self.agenda_reminders,
                "loan_notices": self.loan_notices, "loan_defaults": self.loan_defaults,
                "skipped": self.skipped, "batches": self.batches, "retries": self.retries,
                "queries": self.queries, "errors": self.errors}

    def merge(self, other: "SweepReport") -> "SweepReport":
        for name in ("reminders", "final_notices", "lapsed", "closed_after_deadline", "window_notices",
                     "agenda_reminders", "loan_notices", "loan_defaults", "skipped", "batches", "retries", "queries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        return self


@dataclass
class _Run:
    uow_factory: Callable[[], UnitOfWork]
    now: datetime
    today: date
    report: SweepReport
    batch_size: int
    on_item: Callable[[str], None] | None

    def item(self, what: str) -> None:
        # A hook for tests: raising here simulates a sweep killed in the middle of a batch.
        if self.on_item is not None:
            self.on_item(what)


def _batches(run: _Run, name: str, find: Callable, apply: Callable[[object, list, BatchWriter], None],
             key: Callable = lambda row: row[0]) -> None:
    """find(session, after, limit) -> rows ordered by key; apply(catalogue, rows, writer).
    One transaction per batch; a batch refused by a concurrent writer is rolled back and read again."""
    after = 0
    while True:
        last_error: Exception | None = None
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                # Out of step with the concurrent writer before reading again.
                time.sleep(random.uniform(0, 0.02 * attempt))
            with run.uow_factory() as uow:
                rows = find(uow.session, after, run.batch_size)
                run.report.queries += 1
                if not rows:
                    return
                writer = BatchWriter(run.now)
                counts_before = _counts(run.report)
                try:
                    apply(uow.catalogue, rows, writer)
                    run.report.queries += writer.write(uow.session)
                    uow.commit()
                except (IntegrityError, VersionConflict, OperationalError) as exc:
                    uow.rollback()
                    _restore(run.report, counts_before)
                    run.report.retries += 1
                    last_error = exc
                    continue
                except BaseException:
                    _restore(run.report, counts_before)
                    raise
            break
        else:
            run.report.errors.append(f"{name} : lot abandonné après {MAX_ATTEMPTS} conflits ({last_error})")
            return
        run.report.batches += 1
        if len(rows) < run.batch_size:
            return
        after = key(rows[-1])


_COUNTED = ("reminders", "final_notices", "lapsed", "closed_after_deadline", "window_notices",
            "agenda_reminders", "loan_notices", "loan_defaults", "skipped")


def _counts(report: SweepReport) -> dict:
    return {k: getattr(report, k) for k in _COUNTED} | {"errors": len(report.errors)}


def _restore(report: SweepReport, counts: dict) -> None:
    for k in _COUNTED:
        setattr(report, k, counts[k])
    del report.errors[counts["errors"]:]


def _fire(fired: dict, state: str, trigger: str, shape: str = "diagnostic") -> str:
    """The lifecycle's answer for (state, trigger, line shape) by the system, asked once per
    batch: these triggers have no guards, so the answer depends on nothing else (and `fire`
    costs ~0.2 ms)."""
    key = (state, trigger, shape)
    if key not in fired:
        try:
            fired[key] = fire(state, trigger, role="system", shape=shape)
        except RuleViolation as exc:
            fired[key] = exc
    if isinstance(fired[key], RuleViolation):
        raise fired[key]
    return fired[key]


def _last_event_columns():
    last_seq = select(func.max(E.seq)).where(E.dossier_id == D.id).correlate(D).scalar_subquery()
    last_hash = (select(E.hash).where(E.dossier_id == D.id).order_by(E.seq.desc()).limit(1)
                 .correlate(D).scalar_subquery())
    return last_seq.label("last_seq"), last_hash.label("last_hash")


def _programme_key(row) -> str:
    return f"{row.programme_id}@v{row.programme_version}"


# -- documents: reminders and final notices ----------------------------------------------------

def latest_start_for(today: date, days: int, shift: bool) -> date:
    """The latest request day whose step of `days` is due by `today` (deadline(day) <= today)."""
    day = today - timedelta(days=days)
    while reminder_due_on(day, days, shift_to_working_day=shift) > today:
        day -= timedelta(days=1)
    return day


def reminder_windows(programme: Programme, today: date) -> list[tuple[int, str, date, date | None]]:
    """For each reminder step: (after_days, kind, latest request day, earliest request day excluded)
    such that the step is the latest one due today for requests made in (lo, hi]."""
    r = programme.reminders
    steps = sorted(r.steps, key=lambda s: s.after_days)
    his = [latest_start_for(today, s.after_days, r.shift_to_working_day) for s in steps]
    out = []
    for i, step in enumerate(steps):
        lo = his[i + 1] if i + 1 < len(steps) else None
        if lo is not None and lo >= his[i]:
            continue  # never the latest step due today
        out.append((step.after_days, step.kind, his[i], lo))
    return out


def _find_reminders(catalogue, today: date):
    whens = []
    max_hi = None
    for programme in catalogue.all():
        for after_days, _kind, hi, lo in reminder_windows(programme, today):
            cond = [D.programme_id == programme.id, D.programme_version == programme.version, R.requested_on <= hi]
            if lo is not None:
                cond.append(R.requested_on > lo)
            whens.append((and_(*cond), after_days))
            max_hi = hi if max_hi is None or hi > max_hi else max_hi
    if not whens:
        return None
    step = case(*whens, else_=None)
    key = D.reference + literal(":docreq:") + cast(R.id, String) + literal(":") + cast(step, String)
    last_seq, last_hash = _last_event_columns()

    def find(session, after: int, limit: int):
        return session.execute(
            select(R.id, R.kinds, R.requested_on, R.lapse_on, D.id.label("dossier_id"), D.reference,
                   D.programme_id, D.programme_version, D.status, D.version, D.company_facts,
                   step.label("step"), last_seq, last_hash)
            .join(D, D.id == R.dossier_id)
            .where(R.status == "open", R.requested_on <= max_hi, R.lapse_on > today, R.id > after,
                   D.status.in_(OPEN_STATES), step.is_not(None), ~exists().where(N.dedupe_key == key))
            .order_by(R.id).limit(limit)
        ).all()
    return find


def _apply_reminders(run: _Run):
    def apply(catalogue, rows, writer: BatchWriter) -> None:
        fired: dict = {}
        for row in rows:
            programme = catalogue.get(row.programme_id, row.programme_version)
            kind = next(s.kind for s in programme.reminders.steps if s.after_days == row.step)
            try:
                # `commands.remind`: the lifecycle allows it, the letter renders, one event.
                state_after = _fire(fired, row.status, "remind")
                stand_in = dossier_stand_in(reference=row.reference, company_facts=row.company_facts,
                                            status=state_after)
                note = notification_row(
                    kind=kind, dedupe_key=f"{row.reference}:docreq:{row.id}:{row.step}", now=run.now,
                    recipient=applicant_recipient(stand_in), dossier_id=row.dossier_id,
                    context=letter_context(stand_in, programme, kinds=row.kinds,
                                           requested_on=row.requested_on.isoformat(),
                                           lapse_on=row.lapse_on.isoformat(), step_day=row.step))
            except (RuleViolation, ValueError, LookupError) as exc:
                run.report.skipped += 1
                run.report.errors.append(f"relance {row.reference} (demande {row.id}) : {exc}")
                continue
            tip = writer.tip(dossier_id=row.dossier_id, last_seq=row.last_seq, last_hash=row.last_hash,
                             version=row.version)
            writer.notify(note)
            writer.event(tip, dossier_id=row.dossier_id, reference=row.reference, programme_key=_programme_key(row),
                         command="remind", state_before=row.status, state_after=state_after,
                         data={"request_id": row.id, "after_days": row.step, "kind": kind})
            if kind == "documents_final_notice":
                run.report.final_notices += 1
            else:
                run.report.reminders += 1
            run.item("remind")
    return apply


# -- lapses ---------------------------------------------------------------------------------------

def _find_lapses(today: date):
    last_seq, last_hash = _last_event_columns()

    def find(session, after: int, limit: int):
        return session.execute(
            select(R.id, R.lapse_on, D.id.label("dossier_id"), D.reference, D.programme_id, D.programme_version,
                   D.status, D.version, D.company_facts, last_seq, last_hash)
            .join(D, D.id == R.dossier_id)
            .where(R.status == "open", R.lapse_on <= today, R.id > after, D.status.in_(EXIT_STATES))
            .order_by(R.id).limit(limit)
        ).all()
    return find


def _apply_lapses(run: _Run):
    def apply(catalogue, rows, writer: BatchWriter) -> None:
        fired: dict = {}
        done: set[int] = set()
        for row in rows:
            if row.dossier_id in done:
                continue  # its other open requests lapse with it
            programme = catalogue.get(row.programme_id, row.programme_version)
            reason = f"pièces demandées non fournies au {french.day(row.lapse_on)}"
            try:
                # `commands.lapse`: move, close the open requests, one event, the letter.
                state_after = _fire(fired, row.status, "lapse")
                stand_in = dossier_stand_in(reference=row.reference, company_facts=row.company_facts,
                                            status=state_after)
                note = notification_row(
                    kind="dossier_lapsed", dedupe_key=f"{row.reference}:lapsed", now=run.now,
                    recipient=applicant_recipient(stand_in), dossier_id=row.dossier_id,
                    context=letter_context(stand_in, programme, reason=reason, lapsed_on=run.today.isoformat()))
            except (RuleViolation, ValueError, LookupError) as exc:
                run.report.skipped += 1
                run.report.errors.append(f"caducité {row.reference} : {exc}")
                continue
            done.add(row.dossier_id)
            tip = writer.tip(dossier_id=row.dossier_id, last_seq=row.last_seq, last_hash=row.last_hash,
                             version=row.version)
            writer.change_dossier(row.dossier_id, status=state_after, closed_at=run.now)
            writer.close_open_requests(row.dossier_id, "lapsed")
            writer.event(tip, dossier_id=row.dossier_id, reference=row.reference, programme_key=_programme_key(row),
                         command="lapse", state_before=row.status, state_after=state_after,
                         data={"request_id": row.id}, reason=reason)
            writer.notify(note)
            run.report.lapsed += 1
            run.item("lapse")
    return apply


# -- payment deadlines ----------------------------------------------------------------------------

def _find_payment_deadlines(today: date):
    last_seq, last_hash = _last_event_columns()
    pending = exists().where(m.PaymentClaim.dossier_id == D.id, m.PaymentClaim.status == "pending")

    def find(session, after: int, limit: int):
        return session.execute(
            select(D.id, D.reference, D.programme_id, D.programme_version, D.status, D.version, D.company_facts,
                   D.aid_total, D.paid_total, D.recovered_total, D.payment_deadline_on, last_seq, last_hash)
            .where(D.status.in_(("approved", "in_payment")), D.payment_deadline_on < today, ~pending, D.id > after)
            .order_by(D.id).limit(limit)
        ).all()
    return find


def _apply_payment_deadlines(run: _Run):
    def apply(catalogue, rows, writer: BatchWriter) -> None:
        fired: dict = {}
        for row in rows:
            programme = catalogue.get(row.programme_id, row.programme_version)
            net_paid = row.paid_total - row.recovered_total
            aid_total = row.aid_total or ZERO
            remainder = settlement.cancelled_remainder(row.aid_total, net_paid)  # the command's rule
            try:
                # `commands.close_after_payment_deadline`: move, `_close` (the letter), one event.
                state_after = _fire(fired, row.status, "close")
                stand_in = dossier_stand_in(reference=row.reference, company_facts=row.company_facts,
                                            status=state_after)
                note = notification_row(
                    kind="dossier_closed", dedupe_key=f"{row.reference}:closed", now=run.now,
                    recipient=applicant_recipient(stand_in), dossier_id=row.id,
                    context=letter_context(stand_in, programme, aid_total=str(aid_total), paid_total=str(net_paid),
                                           cancelled_remainder=str(remainder), closed_on=run.today.isoformat()))
            except (RuleViolation, ValueError, LookupError) as exc:
                run.report.skipped += 1
                run.report.errors.append(f"clôture {row.reference} : {exc}")
                continue
            tip = writer.tip(dossier_id=row.id, last_seq=row.last_seq, last_hash=row.last_hash, version=row.version)
            writer.change_dossier(row.id, status=state_after, cancelled_remainder=remainder, closed_at=run.now)
            writer.notify(note)
            writer.event(tip, dossier_id=row.id, reference=row.reference, programme_key=_programme_key(row),
                         command="close", state_before=row.status, state_after=state_after,
                         data={"cause": "payment_deadline", "payment_deadline_on": row.payment_deadline_on.isoformat(),
                               "cancelled_remainder": str(remainder)},
                         reason="délai de demande de solde expiré : le reliquat est annulé")
            run.report.closed_after_deadline += 1
            run.item("close")
    return apply


# -- AMI windows ------------------------------------------------------------------------------------

def window_events(catalogue, today: date) -> list[tuple[Programme, object, str]]:
    """(programme, window, "opening" | "closing") whose notice is due today. The latest version
    of each programme carries its calendar."""
    out = []
    for programme_id in catalogue.ids():
        programme = catalogue.latest(programme_id)
        opening_days = programme.notices.window_opening_days
        closing_days = programme.notices.window_closing_days
        for window in programme.windows:
            last_opening_day = min(window.closes_on, window.opens_on + timedelta(days=opening_days))
            if window.opens_on <= today <= last_opening_day:
                out.append((programme, window, "opening"))
            if window.closes_on - timedelta(days=closing_days) <= today <= window.closes_on:
                out.append((programme, window, "closing"))
    return out


def _window_key_prefix(programme: Programme, window, moment: str) -> str:
    return f"window:{programme.id}:{window.opens_on.isoformat()}:{moment}:"


def _find_window_recipients(programme: Programme, window, moment: str):
    prefix = _window_key_prefix(programme, window, moment)
    in_programme = [D.company_id == C.id, D.programme_id == programme.id]
    if moment == "closing":
        in_programme.append(D.status == "draft")

    def find(session, after: int, limit: int):
        companies = session.execute(
            select(C.id, C.siren, C.name, C.email)
            .where(exists().where(*in_programme), C.id > after,
                   ~exists().where(N.dedupe_key == literal(prefix) + C.siren))
            .order_by(C.id).limit(limit)
        ).all()
        if not companies:
            return companies
        drafts = session.execute(
            select(D.company_id, D.reference)
            .where(D.programme_id == programme.id, D.status == "draft",
                   D.company_id.in_([c.id for c in companies]))
            .order_by(D.id)
        ).all()
        by_company: dict[int, list[str]] = {}
        for d in drafts:
            by_company.setdefault(d.company_id, []).append(d.reference)
        return [(c.id, c, by_company.get(c.id, [])) for c in companies]
    return find


def _apply_window_notices(run: _Run, programme: Programme, window, moment: str):
    prefix = _window_key_prefix(programme, window, moment)

    def apply(catalogue, rows, writer: BatchWriter) -> None:
        for _id, company, drafts in rows:
            recipient = company_recipient(name=company.name, siren=company.siren, email=company.email)
            context = {"programme": {"id": programme.id, "name": programme.name, "region": programme.region},
                       "window": {"opens_on": window.opens_on.isoformat(), "closes_on": window.closes_on.isoformat(),
                                  "label": window.label},
                       "company": {"name": company.name, "siren": company.siren}, "drafts": drafts}
            try:
                note = notification_row(kind=f"window_{moment}", dedupe_key=prefix + company.siren, now=run.now,
                                        recipient=recipient, context=context, dossier_id=None)
            except (ValueError, LookupError) as exc:
                run.report.skipped += 1
                run.report.errors.append(f"avis d'appel {programme.id} à {company.siren} : {exc}")
                continue
            writer.notify(note)
            run.report.window_notices += 1
            run.item("window")
    return apply


# -- council agendas --------------------------------------------------------------------------------

def _agenda_key(code: str, officer: str) -> str:
    return f"agenda:{code}:closing:{officer[:100]}"


def _find_agenda_items(today: date, days: int):
    key = literal("agenda:") + S.code + literal(":closing:") + func.substr(D.officer, 1, 100)

    def find(session, after: int, limit: int):
        return session.execute(
            select(D.id, S.code, S.session_date, S.agenda_closes_on, S.programme_id, D.reference, D.company_facts,
                   D.officer, D.quotes, User.display_name.label("officer_display"))
            .join(S, and_(S.programme_id == D.programme_id, S.agenda_closes_on >= today,
                          S.agenda_closes_on <= today + timedelta(days=days)))
            .outerjoin(User, User.username == D.officer)
            .where(D.status == "action_plan", D.officer.is_not(None), D.id > after,
                   ~exists().where(N.dedupe_key == key))
            .order_by(D.id, S.code).limit(limit)
        ).all()
    return find


def _apply_agenda_reminders(run: _Run):
    def apply(catalogue, rows, writer: BatchWriter) -> None:
        # A batch holds whole dossiers, not whole (session, officer) groups: an officer whose
        # dossiers straddle two batches gets their list in the first one; the key then excludes
        # the rest. Batches are large (5,000 dossiers) and the agenda step bounded, so in practice
        # there is one batch.
        groups: dict[tuple[str, str], list] = {}
        for row in rows:
            lead = catalogue.latest(row.programme_id).notices.agenda_reminder_days
            if row.agenda_closes_on > run.today + timedelta(days=lead):
                continue
            groups.setdefault((row.code, row.officer), []).append(row)
        for (code, officer), items in groups.items():
            first = items[0]
            try:
                programme = catalogue.latest(first.programme_id)
                # The letter greets the officer by name, not by account (`services.people`).
                shown = first.officer_display or officer
                recipient = {**officer_recipient(officer), "name": shown}
                context = {
                    "programme": {"id": programme.id, "name": programme.name, "region": programme.region},
                    "session": {"code": code, "session_date": first.session_date.isoformat(),
                                "agenda_closes_on": first.agenda_closes_on.isoformat()},
                    "officer_name": shown,
                    "items": [{"reference": r.reference, "company_name": r.company_facts["name"],
                               "what": ("plan d'action déposé : à proposer au vote" if "2" in (r.quotes or {})
                                        else "plan d'action attendu de l'entreprise")} for r in items],
                }
                note = notification_row(kind="agenda_closing", dedupe_key=_agenda_key(code, officer), now=run.now,
                                        recipient=recipient, context=context, dossier_id=None)
            except (RuleViolation, ValueError, LookupError) as exc:
                run.report.skipped += 1
                run.report.errors.append(f"rappel d'ordre du jour {code} à {officer} : {exc}")
                continue
            writer.notify(note)
            run.report.agenda_reminders += 1
            run.item("agenda")
    return apply


# -- the sweeps -------------------------------------------------------------------------------------

@observed_sweep  # duration, outcome and a log line per part; a request id for its events
def sweep_part(part: str, *, uow_factory: Callable[[], UnitOfWork], clock: Clock,
               batch_size: int = DEFAULT_BATCH_SIZE, on_item: Callable[[str], None] | None = None) -> SweepReport:
    """One of `PARTS`, as of the clock's instant."""
    if part not in PARTS:
        raise ValueError(f"unknown sweep {part!r} (known: {', '.join(PARTS)})")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = clock.now()
    today = paris_date(now)
    run = _Run(uow_factory, now, today, SweepReport(today), batch_size, on_item)
    if part == "documents":
        find = _find_reminders(uow_factory().catalogue, today)
        if find is not None:
            _batches(run, "relances", find, _apply_reminders(run))
    elif part == "lapses":
        _batches(run, "caducités", _find_lapses(today), _apply_lapses(run))
    elif part == "payment_deadlines":
        _batches(run, "délais de paiement", _find_payment_deadlines(today), _apply_payment_deadlines(run))
    elif part == "windows":
        for programme, window, moment in window_events(uow_factory().catalogue, today):
            _batches(run, f"avis d'appel {programme.id}", _find_window_recipients(programme, window, moment),
                     _apply_window_notices(run, programme, window, moment))
    elif part == "agendas":
        # The stored agenda deadlines an agenda's closing made past move to the next session's
        # (`services.deadlines`): one SELECT, one UPDATE of the rows that changed.
        with uow_factory() as uow:
            moved = deadlines.roll_agenda_deadlines(uow.session, today)
            uow.commit()
        run.report.queries += 2 if moved else 1
        catalogue = uow_factory().catalogue
        # One query with the longest lead time of any programme; each programme's own lead time
        # is applied to its sessions when the batch is written.
        longest = max(catalogue.latest(pid).notices.agenda_reminder_days for pid in catalogue.ids())
        _batches(run, "ordres du jour", _find_agenda_items(today, longest), _apply_agenda_reminders(run))
    elif part == "loans":
        _sweep_loans(run, clock)
    return run.report


def _sweep_loans(run: _Run, clock: Clock) -> None:
    """Loans (SPEC §11.3): the notice 15 days before each due date, the reminder at due + 30
    days, the default at due + 60 days — each once per instalment and step. Set-based like the
    other parts: a batch of loans whose oldest unpaid instalment is due within the notice period
    or overdue (one indexed query), their repayments and the loan letters already queued (one
    query each), then the batch writer's statements — the same count whatever the number of loans."""
    _batches(run, "prêts", _find_loans(run.today), _apply_loans(run), key=lambda item: item[0].id)


def sweep_one_loan(*, uow_factory: Callable[[], UnitOfWork], clock: Clock, dossier_id: int) -> SweepReport:
    """The loans part of the sweep for one dossier only, as of the clock's instant: its due
    notice, reminders and default, exactly as the full sweep writes them (same finder, same
    batch writer). For a caller that plays one dossier's life on its own (the demo), where a
    full sweep at a past instant would write other dossiers' letters out of their order."""
    now = clock.now()
    today = paris_date(now)
    run = _Run(uow_factory, now, today, SweepReport(today), DEFAULT_BATCH_SIZE, None)
    base = _find_loans(today)

    def find(session, after: int, limit: int):
        if after >= dossier_id:
            return []
        return [item for item in base(session, dossier_id - 1, 1) if item[0].id == dossier_id]

    _batches(run, "prêts", find, _apply_loans(run), key=lambda item: item[0].id)
    return run.report


def _find_loans(today: date):
    from services.loans import due_notice_window

    last_seq, last_hash = _last_event_columns()
    P = m.Repayment

    def find(session, after: int, limit: int):
        rows = session.execute(
            select(D.id, D.reference, D.programme_id, D.programme_version, D.line, D.status, D.version,
                   D.company_facts, D.loan, D.loan_outstanding, last_seq, last_hash)
            .where(D.status.in_(LOAN_STATES), D.loan_next_due_on.is_not(None),
                   D.loan_next_due_on <= due_notice_window(today), D.id > after)
            .order_by(D.id).limit(limit)
        ).all()
        if not rows:
            return rows
        ids = [r.id for r in rows]
        repaid: dict[int, list] = {}
        for dossier_id, amount, received_on in session.execute(
                select(P.dossier_id, P.amount, P.received_on).where(P.dossier_id.in_(ids)).order_by(P.id)):
            repaid.setdefault(dossier_id, []).append((amount, received_on))
        sent = set(session.scalars(select(N.dedupe_key).where(N.dossier_id.in_(ids), N.dedupe_key.like("%:loan:%"))))
        return [(r, repaid.get(r.id, []), sent) for r in rows]
    return find


def _apply_loans(run: _Run):
    from rules import loans as loan_rules
    from services.loans import due_notice_window, head_of_service_recipient

    def apply(catalogue, items, writer: BatchWriter) -> None:
        fired: dict = {}
        for row, repaid, sent in items:
            programme = catalogue.get(row.programme_id, row.programme_version)
            shape = programme.line(row.line).shape
            try:
                plan = loan_rules.schedule_of(row.loan)
                payments = [loan_rules.Repayment(a, d) for a, d in repaid]
                steps = loan_rules.arrears_steps(plan, payments, run.today)
                status = loan_rules.loan_status(plan, payments)
                state = row.status
                letters = []  # (kind, dedupe, context, command, data, state_after)
                for inst in plan:
                    if run.today < inst.due_on <= due_notice_window(run.today):
                        letters.append(("repayment_due", f"loan:{inst.number}:due",
                                        {"instalment": inst.as_dict(), "due_on": inst.due_on.isoformat(),
                                         "outstanding": str(status.outstanding)}))
                for step in steps:
                    if step.step == "reminder":
                        letters.append(("repayment_reminder", f"loan:{step.instalment}:reminder",
                                        {"instalment": {"number": step.instalment, "date": step.due_on.isoformat()},
                                         "due_on": step.due_on.isoformat(), "unpaid": str(step.unpaid)}))
                defaults = [s for s in steps if s.step == "default"]
                letters = [x for x in letters if f"{row.reference}:{x[1]}" not in sent]
                to_default = bool(defaults) and state == "in_repayment"
                if not letters and not to_default:
                    continue
                tip = writer.tip(dossier_id=row.id, last_seq=row.last_seq, last_hash=row.last_hash,
                                 version=row.version)
                for kind, dedupe, context in letters:
                    after = _fire(fired, state, "remind_repayment", shape)
                    stand_in = dossier_stand_in(reference=row.reference, company_facts=row.company_facts, status=after)
                    writer.notify(notification_row(kind=kind, dedupe_key=f"{row.reference}:{dedupe}", now=run.now,
                                                   recipient=applicant_recipient(stand_in), dossier_id=row.id,
                                                   context=letter_context(stand_in, programme, **context)))
                    writer.event(tip, dossier_id=row.id, reference=row.reference, programme_key=_programme_key(row),
                                 command="remind_repayment", state_before=state, state_after=after,
                                 data={"kind": kind, "instalment": context["instalment"]["number"],
                                       "due_on": context["due_on"]})
                    run.report.loan_notices += 1
                    run.item("loan")
                if to_default:
                    step = defaults[0]
                    after = _fire(fired, state, "declare_default", shape)
                    stand_in = dossier_stand_in(reference=row.reference, company_facts=row.company_facts, status=after)
                    context = {"instalment": {"number": step.instalment, "date": step.due_on.isoformat()},
                               "due_on": step.due_on.isoformat(), "unpaid": str(step.unpaid),
                               "outstanding": str(row.loan_outstanding)}
                    writer.change_dossier(row.id, status=after)
                    writer.event(tip, dossier_id=row.id, reference=row.reference, programme_key=_programme_key(row),
                                 command="declare_default", state_before=state, state_after=after,
                                 data={"instalment": step.instalment, "due_on": step.due_on.isoformat(),
                                       "unpaid": str(step.unpaid)})
                    base = f"{row.reference}:loan:{step.instalment}:default"
                    writer.notify(notification_row(kind="default_notice", dedupe_key=base, now=run.now,
                                                   recipient=applicant_recipient(stand_in), dossier_id=row.id,
                                                   context=letter_context(stand_in, programme, **context)))
                    # The head of service is told too (SPEC §11.3).
                    writer.notify(notification_row(kind="default_notice", dedupe_key=f"{base}:head", now=run.now,
                                                   recipient=head_of_service_recipient(programme), dossier_id=row.id,
                                                   context=letter_context(stand_in, programme, internal=True, **context)))
                    run.report.loan_defaults += 1
                    run.item("loan")
            except (RuleViolation, ValueError, LookupError) as exc:
                run.report.skipped += 1
                run.report.errors.append(f"prêt {row.reference} : {exc}")
                continue
    return apply


def sweep(*, uow_factory: Callable[[], UnitOfWork], clock: Clock, batch_size: int = DEFAULT_BATCH_SIZE,
          parts: tuple[str, ...] = PARTS, on_item: Callable[[str], None] | None = None) -> SweepReport:
    """Every sweep once, as of the clock's instant (what `usine sweep` and the scenario runner's
    `sweep` step run)."""
    report = SweepReport(paris_date(clock.now()))
    for part in parts:
        report.merge(sweep_part(part, uow_factory=uow_factory, clock=clock, batch_size=batch_size, on_item=on_item))
    return report
