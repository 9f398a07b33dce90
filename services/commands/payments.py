"""Payments: claim an advance or the balance, pay a claim (or issue a recovery order), and
closing the dossier once every subsidy and loan is settled; the expense window a claim is judged on."""
from __future__ import annotations

from decimal import Decimal

from db import models as m
from programmes import Programme
from rules import french, settlement
from rules.calendar import paris_date
from rules.errors import InvalidInput, NotAllowed, RuleViolation
from rules.instruments import ExpenseWindow, assess_line_claim, validate_invoice_kinds
from rules.money import ZERO, assess_final_claim, check_advance, parse_amount
from services.clock import Clock
from services.commands.base import _CLAIMS, _PAYMENTS_OF_PHASE, _RECOVERIES_OF_PHASE, Actor, Outcome, _Command, _commit
from services.uow import UnitOfWork


def _voted_line(dossier: m.Dossier, phase: int) -> dict:
    line = settlement.voted_line(dossier.voted, phase)
    if line is None:
        raise InvalidInput("phase", f"phase : la phase {phase} n'a pas été votée pour ce dossier.")
    return line


def expense_window(programme: Programme, dossier: m.Dossier) -> ExpenseWindow:
    """The days an expense of the dossier counts (`rules.settlement.expense_window`)."""
    return settlement.expense_window(months_after_vote=programme.money.expense_window_months_after_vote,
                                     expense_cutoff=programme.money.expense_cutoff,
                                     submitted_on=paris_date(dossier.submitted_at), voted_on=dossier.voted_on)


def _claims(session, dossier_id: int) -> list[m.PaymentClaim]:
    # Read before the command adds its own rows: nothing of the command's to flush first.
    with session.no_autoflush:
        return list(session.scalars(_CLAIMS, {"dossier_id": dossier_id}).all())


def _net_paid(session, dossier_id: int, phase: int) -> Decimal:
    with session.no_autoflush:  # read before this payment is added
        paid = session.scalars(_PAYMENTS_OF_PHASE, {"dossier_id": dossier_id, "phase": phase}).all()
        recovered = session.scalars(_RECOVERIES_OF_PHASE, {"dossier_id": dossier_id, "phase": phase}).all()
    return sum(paid, ZERO) - sum(recovered, ZERO)


def claim_payment(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, phase, kind: str,
                  amount=None, invoices: list | None = None, expected_version: int | None = None) -> Outcome:
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    if phase not in (1, 2) and not (isinstance(phase, int) and any(p.number == phase for p in cmd.programme.phases)):
        raise InvalidInput("phase", f"phase : numéro de phase inconnu « {phase} ».")
    if kind not in ("advance", "final"):
        raise InvalidInput("kind", "kind : « advance » ou « final ».")
    claims = _claims(cmd.session, cmd.dossier.id)
    parsed_amount = parse_amount(amount, "amount", allow_zero=False) if kind == "advance" else None
    by_instrument = bool((cmd.dossier.voted or {}).get("by_instrument"))
    if kind == "final":
        lines = validate_invoice_kinds(invoices, consulting=settlement.invoices_in_days(cmd.dossier.voted, phase))
    found: dict = {}

    def payment_deadline_open() -> None:
        due = cmd.dossier.payment_deadline_on
        if due is not None and cmd.today > due:
            raise RuleViolation("payment_deadline", f"Le délai de demande de paiement a expiré le {french.day(due)}.",
                                field="at")

    def claim_valid() -> None:
        line = _voted_line(cmd.dossier, phase)
        voted_aid = Decimal(line["aid"])
        same_phase = [c for c in claims if c.phase == line["phase"]]
        if any(c.kind == "final" for c in same_phase):
            raise NotAllowed(f"La demande de solde de la phase {phase} a déjà été faite.", field="kind")
        if voted_aid <= 0 and by_instrument:
            raise NotAllowed(f"La ligne {line['phase']} n'a pas de subvention votée à demander.", field="phase")
        if kind == "advance":
            advances = sum((c.amount_claimed for c in same_phase if c.kind == "advance"), ZERO)
            check_advance(cmd.programme, phase=line["phase"], amount=parsed_amount, voted_aid=voted_aid,
                          advances_so_far=advances)
        elif by_instrument:
            found["assessment"] = assess_line_claim(cmd.programme, size_class=cmd.dossier.size_class, voted_line=line,
                                                    invoices=lines, window=expense_window(cmd.programme, cmd.dossier))
        else:
            window = expense_window(cmd.programme, cmd.dossier)
            found["assessment"] = assess_final_claim(cmd.programme, phase=line["phase"], invoices=lines,
                                                     voted_aid=voted_aid, voted_expense=Decimal(line["eligible_expense"]),
                                                     window=window)
        found["phase"] = line["phase"]

    cmd.move("claim_payment", {"payment_deadline_open": payment_deadline_open, "claim_valid": claim_valid})
    assessment = found.get("assessment")
    phase = found["phase"]
    claim = m.PaymentClaim(
        dossier_id=cmd.dossier.id, phase=phase, kind=kind,
        amount_claimed=parsed_amount if kind == "advance" else assessment.claimed_expense,
        invoices=[ln.as_dict() for ln in lines] if kind == "final" else [],
        assessment=assessment.to_record() if assessment else None, status="pending", claimed_at=cmd.now)
    cmd.session.add(claim)
    cmd.session.flush()
    cmd.record("claim_payment", {"claim_id": claim.id, "phase": phase, "kind": kind,
                                 "amount": str(parsed_amount) if parsed_amount is not None else None,
                                 "invoices": claim.invoices, "assessment": claim.assessment})
    _commit(uow, dossier_id)
    return cmd.outcome(assessment.adjustments if assessment else (), claim_id=claim.id,
                       excluded_lines=list(assessment.excluded_lines) if assessment else [])


def pay(*, uow: UnitOfWork, clock: Clock, actor: Actor, dossier_id: int, claim_id: int | None = None,
        expected_version: int | None = None) -> Outcome:
    """Finance pays the oldest pending claim (or the one named): an advance as claimed; a final
    claim as the aid justified minus what the phase already received — below zero, a recovery
    order. When every phase's final claim is paid, the dossier closes and the rest is cancelled."""
    cmd = _Command(uow, clock, actor, dossier_id, expected_version)
    claims = _claims(cmd.session, cmd.dossier.id)
    pending = [c for c in claims if c.status == "pending" and (claim_id is None or c.id == claim_id)]

    def claim_pending() -> None:
        if not pending:
            raise NotAllowed("Aucune demande de paiement en attente.", field="claim_id")

    cmd.move("pay", {"claim_pending": claim_pending})
    claim = pending[0]
    due = settlement.payment_due(
        kind=claim.kind, claimed=claim.amount_claimed,
        justified_aid=Decimal(claim.assessment["justified_aid"]) if claim.kind != "advance" else None,
        voted_aid=Decimal(_voted_line(cmd.dossier, claim.phase)["aid"]),
        net_paid_before=_net_paid(cmd.session, cmd.dossier.id, claim.phase))
    amount, recovery = due.amount, due.recovery
    if recovery is None:
        cmd.session.add(m.Payment(dossier_id=cmd.dossier.id, claim_id=claim.id, phase=claim.phase, kind=claim.kind,
                                  amount=amount, paid_at=cmd.now))
        cmd.dossier.paid_total = cmd.dossier.paid_total + amount
    else:
        cmd.session.add(m.RecoveryOrder(dossier_id=cmd.dossier.id, claim_id=claim.id, phase=claim.phase,
                                        amount=recovery, issued_at=cmd.now))
        cmd.dossier.recovered_total = cmd.dossier.recovered_total + recovery
    claim.status = "paid"
    claim.paid_at = cmd.now
    net_paid = cmd.dossier.paid_total - cmd.dossier.recovered_total
    closing = subsidies_settled(cmd.dossier, claims) and loan_settled(cmd.dossier)
    data = {"claim_id": claim.id, "phase": claim.phase, "kind": claim.kind, "amount": str(amount),
            "recovery": str(recovery) if recovery is not None else None, "paid_total": str(net_paid)}
    line_label = None
    if (cmd.dossier.voted or {}).get("by_instrument"):
        line_label = f"ligne « {cmd.programme.phase(claim.phase).name} »"
    cmd.notify("payment_issued", f"payment:{claim.id}", phase=claim.phase, payment_kind=claim.kind, line_label=line_label,
               amount=str(amount), paid_total=str(net_paid),
               recovery_amount=str(recovery) if recovery is not None else None,
               excluded_lines=(claim.assessment or {}).get("excluded_lines", []))
    if closing:
        cmd.move("close")
        _close(cmd, reason="solde payé")
        data["closed"] = True
    cmd.record("pay", data)
    _commit(uow, dossier_id)
    return cmd.outcome(paid=str(amount), recovery=str(recovery) if recovery is not None else None)


def subsidies_settled(dossier: m.Dossier, claims: list[m.PaymentClaim]) -> bool:
    """Every voted phase's final claim paid (`rules.settlement.subsidies_settled`)."""
    return settlement.subsidies_settled(dossier.voted, {c.phase for c in claims if c.kind == "final" and c.status == "paid"})


def loan_settled(dossier: m.Dossier) -> bool:
    """No loan voted, or the loan disbursed and its principal repaid (`rules.settlement.loan_settled`)."""
    return settlement.loan_settled(dossier.voted, dossier.loan_outstanding if dossier.loan is not None else None)


def _close(cmd: _Command, *, reason: str, loan: dict | None = None) -> None:
    """Close the dossier and send the closing letter; `loan` (the loan's figures at closing, as
    `services.loans.loan_figures` gives them) puts the loan's own balance in the letter."""
    net_paid = cmd.dossier.paid_total - cmd.dossier.recovered_total
    remainder = settlement.cancelled_remainder(cmd.dossier.aid_total, net_paid)
    cmd.dossier.cancelled_remainder = remainder
    cmd.dossier.closed_at = cmd.now
    cmd.notify("dossier_closed", "closed", aid_total=str(cmd.dossier.aid_total or ZERO), paid_total=str(net_paid),
               cancelled_remainder=str(remainder), closed_on=cmd.today.isoformat(),
               **({"loan": loan} if loan else {}))
