"""Use cases of a voted loan (SPEC §11.3): finance disburses it and records the repayments, the
deadline sweep reminds and declares the default, the head of service writes it off. Each is one
unit of work through the command frame of `services.commands` (lifecycle, event, outbox, one
commit); the schedule and the allocation are the pure rules of `rules.loans`."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import bindparam, select

from db import models as m
from rules import french
from rules import loans as rules
from rules.errors import InvalidInput, NotAllowed
from rules.money import ZERO, parse_amount
from services.clock import Clock
from services.commands import Actor, Outcome, subsidies_settled
from services.commands.base import _Command, _commit, _reason
from services.commands.payments import _claims, _close
from services.uow import UnitOfWork
from states.lifecycle import LOAN_STATES

# The company is told this many days before each due date (SPEC §11.3).
DUE_NOTICE_DAYS = 15

_REPAYMENTS = (select(m.Repayment.amount, m.Repayment.received_on)
               .where(m.Repayment.dossier_id == bindparam("dossier_id")).order_by(m.Repayment.id))


def voted_loan(dossier: m.Dossier) -> dict | None:
    """The loan terms the council voted (`rules.loans.voted_loan_terms`), or None."""
    return rules.voted_loan_terms(dossier.voted)


def plan_of(dossier: m.Dossier) -> tuple[rules.Instalment, ...]:
    """The schedule drawn at disbursement (`rules.loans.schedule_of`: its terms and date are on the dossier)."""
    return rules.schedule_of(dossier.loan)


def repayments_of(session, dossier_id: int) -> list[rules.Repayment]:
    with session.no_autoflush:
        return [rules.Repayment(amount, received_on)
                for amount, received_on in session.execute(_REPAYMENTS, {"dossier_id": dossier_id}).all()]


def loan_figures(session, dossier: m.Dossier) -> dict | None:
    """The loan as SCENARIOS.md reports it: principal, disbursed, repaid, interest_paid,
    outstanding, instalments, next_due — None when the dossier has no loan voted."""
    if dossier.loan is None:
        return rules.loan_figures(dossier.voted, None, (), None)
    return rules.loan_figures(dossier.voted, plan_of(dossier), repayments_of(session, dossier.id), dossier.written_off)


def repayment_worklist(session, where, today: date, *, limit: int = 200) -> list[dict]:
    """Finance's loans to watch: every disbursed loan still owed (in repayment or in default)
    within `where` (a clause on Dossier joined with Company: the reader's scope), the oldest
    unpaid instalment first. Each row: the dossier, its next instalment (date, principal,
    interest), what is due today, how many days the oldest unpaid instalment is late, the
    outstanding principal. Two statements whatever the number of rows: the dossiers, then their
    repayments."""
    dossiers = session.scalars(
        select(m.Dossier).join(m.Company, m.Dossier.company_id == m.Company.id)
        .where(where, m.Dossier.status.in_(LOAN_STATES), m.Dossier.loan.is_not(None))
        .order_by(m.Dossier.loan_next_due_on.is_(None), m.Dossier.loan_next_due_on, m.Dossier.id).limit(limit)).all()
    received: dict[int, list[rules.Repayment]] = {d.id: [] for d in dossiers}
    if dossiers:
        for dossier_id, amount, received_on in session.execute(
                select(m.Repayment.dossier_id, m.Repayment.amount, m.Repayment.received_on)
                .where(m.Repayment.dossier_id.in_(list(received))).order_by(m.Repayment.id)):
            received[dossier_id].append(rules.Repayment(amount, received_on))
    rows = []
    for d in dossiers:
        plan = plan_of(d)
        status = rules.loan_status(plan, received[d.id])
        nxt = status.next_due
        rows.append({"dossier": d, "next_due": nxt, "outstanding": status.outstanding,
                     "due_today": rules.amount_due(plan, received[d.id], today),
                     "days_late": max((today - nxt.due_on).days, 0) if nxt else 0})
    return rows


def _keep_columns(dossier: m.Dossier, status: rules.LoanStatus) -> None:
    """The two columns the sweeps select on, written with the change that moves them."""
    dossier.loan_outstanding = status.outstanding
    dossier.loan_next_due_on = status.next_due.due_on if status.next_due else None


def disburse_loan(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int,
                  expected_version: int | None = None) -> Outcome:
    """Finance disburses the voted principal, once and never more; the day fixes the schedule,
    sent to the company with the `loan_disbursed` letter."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    terms = voted_loan(cmd.dossier)

    def loan_to_disburse() -> None:
        if terms is None:
            raise NotAllowed("Aucun prêt n'a été voté pour ce dossier.", field="do")
        if cmd.dossier.loan is not None:
            raise NotAllowed(f"Le prêt a déjà été versé le {french.day(date.fromisoformat(cmd.dossier.loan['disbursed_on']))}.",
                             field="do")

    cmd.move("disburse_loan", {"loan_to_disburse": loan_to_disburse})
    cmd.dossier.loan = {"kind": terms["kind"], "principal": terms["principal"], "annual_rate": terms["annual_rate"],
                        "deferral_months": terms["deferral_months"], "instalments": terms["instalments"],
                        "disbursed_on": cmd.today.isoformat(), "phase": terms["phase"]}
    plan = plan_of(cmd.dossier)
    status = rules.loan_status(plan, [])
    _keep_columns(cmd.dossier, status)
    cmd.record("disburse_loan", {"loan": cmd.dossier.loan, "instalments": len(plan),
                                 "first_due_on": plan[0].due_on.isoformat()})
    cmd.notify("loan_disbursed", "loan:disbursed", loan=cmd.dossier.loan, principal=terms["principal"],
               disbursed_on=cmd.today.isoformat(), schedule=[i.as_dict() for i in plan])
    _commit(uow, dossier_id)
    return cmd.outcome(loan=status.as_dict())


def _parse_received_on(raw, today: date, disbursed_on: date) -> date:
    if not isinstance(raw, str):
        raise InvalidInput("received_on", "received_on : une date AAAA-MM-JJ est attendue.")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("received_on", f"received_on : « {raw} » n'est pas une date AAAA-MM-JJ.") from None
    if day > today:
        raise InvalidInput("received_on", f"received_on : le {french.day(day)} est postérieur à aujourd'hui "
                           f"({french.day(today)}) : un remboursement s'enregistre une fois reçu.")
    if day < disbursed_on:
        raise InvalidInput("received_on", f"received_on : le {french.day(day)} précède le versement du prêt "
                           f"({french.day(disbursed_on)}).")
    return day


def record_repayment(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, amount, received_on,
                     expected_version: int | None = None) -> Outcome:
    """Finance records a repayment received: it settles the oldest instalment first, interest
    before principal; more than is due is refused (`overpayment`) unless it is exactly the full
    early repayment. A loan in default brought up to date goes back to repayment; a loan repaid
    with every subsidy settled closes the dossier."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if cmd.dossier.loan is None:
        raise NotAllowed("Le prêt de ce dossier n'a pas été versé : aucun remboursement à enregistrer.", field="do")
    value = parse_amount(amount, "amount", allow_zero=False)
    day = _parse_received_on(received_on, cmd.today, date.fromisoformat(cmd.dossier.loan["disbursed_on"]))
    plan = plan_of(cmd.dossier)
    before = repayments_of(cmd.session, cmd.dossier.id)
    found: dict = {}

    def repayment_valid() -> None:
        found["result"] = rules.apply_repayment(plan, before, value, day)

    cmd.move("record_repayment", {"repayment_valid": repayment_valid})
    result: rules.RepaymentResult = found["result"]
    cmd.session.add(m.Repayment(dossier_id=cmd.dossier.id, amount=value, received_on=day, principal=result.principal,
                                interest=result.interest, early=result.early_repayment, recorded_by=actor.name,
                                recorded_at=cmd.now))
    _keep_columns(cmd.dossier, result.status)
    data = {"amount": str(value), "received_on": day.isoformat(), "principal": str(result.principal),
            "interest": str(result.interest), "early_repayment": result.early_repayment,
            "allocations": [a.as_dict() for a in result.allocations], "outstanding": str(result.status.outstanding)}
    history = [*before, result.repayment]
    if cmd.dossier.status == "in_default" and rules.default_cured(plan, history, cmd.today):
        cmd.move("cure_default")
        data["default_cured"] = True
    if result.status.repaid_in_full and subsidies_settled(cmd.dossier, _claims(cmd.session, cmd.dossier.id)):
        cmd.move("close")
        _close(cmd, reason="prêt remboursé", loan=result.status.as_dict())
        data["closed"] = True
    cmd.record("record_repayment", data)
    _commit(uow, dossier_id)
    return cmd.outcome(loan=result.status.as_dict())


def write_off(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, reason: str,
              expected_version: int | None = None) -> Outcome:
    """The head of service writes off a loan in default, with a reason: the dossier closes and
    the outstanding principal is recorded as written off (passage en perte)."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    reason = _reason(reason)
    cmd.move("write_off")
    written = cmd.dossier.loan_outstanding or ZERO
    cmd.dossier.written_off = written
    cmd.dossier.loan_next_due_on = None
    _close(cmd, reason="prêt passé en perte", loan=loan_figures(cmd.session, cmd.dossier))
    cmd.record("write_off", {"written_off": str(written)}, reason)
    _commit(uow, dossier_id)
    return cmd.outcome(written_off=str(written))


# -- what the deadline sweep reads (services.sweep, part "loans") -----------------------------------

def due_notice_window(today: date) -> date:
    """The sweep looks at loans whose oldest unpaid instalment is due by this day (or overdue)."""
    return today + timedelta(days=DUE_NOTICE_DAYS)


def head_of_service_recipient(programme) -> dict:
    slug = programme.region.lower().replace(" ", "-").replace("'", "")
    return {"role": "head", "name": f"Chef(fe) du service Industrie du Futur — Région {programme.region}",
            "email": f"chef-de-service@{slug}.usine.invalid"}


__all__ = ["disburse_loan", "loan_figures", "record_repayment", "write_off"]
