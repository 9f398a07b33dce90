"""Payment claims: the queue of pending claims (and, beside it, the loans being repaid, oldest
unpaid instalment first), and one claim's review — its invoices, what is
eligible against what is claimed, the lines excluded by the expense cut-off, the advance cap —
with the `pay` button for finance (`services.commands.pay` on that claim)."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import select

from db import models as m
from rules.calendar import paris_date
from rules.loans import DEFAULT_AFTER_DAYS, REMINDER_AFTER_DAYS
from rules.money import ZERO
from services.loans import repayment_worklist
from services.search import dossier_row, scope_clause
from states.lifecycle import allowed_triggers
from web.app import render
from web.auth import Forbidden, WebUser, current_user
from web.dossier_view import OutOfScope, _phase_money, scoped_dossier

router = APIRouter()
CLAIM_READERS = ("officer", "finance", "auditor", "head")


def _readers(user: WebUser) -> None:
    if user.role not in CLAIM_READERS:
        raise Forbidden("Les demandes de paiement sont examinées par le service financier et les chargé(e)s de mission.")


@router.get("/paiements")
def claims(request: Request, user: Annotated[WebUser, Depends(current_user)],
           status: Annotated[str, Query(pattern="^(pending|paid|remboursements)$")] = "pending"):
    _readers(user)
    web = request.app.state.web
    today = paris_date(web.clock.now())
    with web.uow_factory() as uow:
        if status == "remboursements":
            loans = [{**row, "row": dossier_row(row["dossier"], uow.catalogue)}
                     for row in repayment_worklist(uow.session, scope_clause(user.actor, uow.catalogue), today)]
            return render(request, "claims.html", title="Remboursements de prêts", items=[], loans=loans,
                          claim_status=status, reminder_days=REMINDER_AFTER_DAYS, default_days=DEFAULT_AFTER_DAYS,
                          example_rows=any(r["row"]["example"] for r in loans))
        rows = uow.session.execute(
            select(m.PaymentClaim, m.Dossier).join(m.Dossier, m.PaymentClaim.dossier_id == m.Dossier.id)
            .join(m.Company, m.Dossier.company_id == m.Company.id)
            .where(scope_clause(user.actor, uow.catalogue), m.PaymentClaim.status == status)
            .order_by(m.PaymentClaim.claimed_at if status == "pending" else m.PaymentClaim.paid_at.desc(),
                      m.PaymentClaim.id).limit(200)).all()
        items = []
        for claim, d in rows:
            waited = (today - paris_date(claim.claimed_at)).days
            items.append({"claim": claim, "dossier": dossier_row(d, uow.catalogue), "waited": waited})
        return render(request, "claims.html", title="Paiements", items=items, claim_status=status,
                      example_rows=any(i["dossier"]["example"] for i in items))


def _invoice_rows(claim: m.PaymentClaim, programme) -> list[dict]:
    """Each invoice line beside the assessment the service recorded: the lines it excluded (with
    its reason) and, for the others, the amount at the programme's day-rate cap."""
    cap = programme.money.day_rate_cap
    excluded_lines = list((claim.assessment or {}).get("excluded_lines", []))
    out = []
    for line in claim.invoices or []:
        if "amount" in line:
            # An investment line's invoice (SPEC §11.2): an amount, no days nor day rate.
            rate = capped_rate = None
            gross = counted = Decimal(line["amount"])
        else:
            rate = Decimal(line["day_rate"])
            gross = (line["days"] * rate).quantize(Decimal("0.01"))
            capped_rate = min(rate, cap) if cap is not None else rate
            counted = (line["days"] * capped_rate).quantize(Decimal("0.01"))
        match = next((x for x in excluded_lines if x["date"] == line["date"] and Decimal(x["amount"]) == counted), None)
        if match is not None:
            excluded_lines.remove(match)
        excluded = match is not None
        out.append({"date": line["date"], "days": line.get("days"), "day_rate": rate, "gross": gross,
                    "capped_rate": capped_rate, "counted": ZERO if excluded else counted, "excluded": excluded,
                    "reason": match["reason"] if match else None,
                    "rate_cut": None if excluded or capped_rate == rate else gross - counted})
    return out


@router.get("/paiements/{claim_id}")
def claim(request: Request, claim_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
          user: Annotated[WebUser, Depends(current_user)]):
    _readers(user)
    web = request.app.state.web
    with web.uow_factory() as uow:
        c = uow.session.get(m.PaymentClaim, claim_id)
        if c is None:
            raise HTTPException(404, "Demande de paiement introuvable.")
        try:
            d = scoped_dossier(uow, user.actor, c.dossier_id)
        except OutOfScope:
            raise HTTPException(404, "Demande de paiement introuvable.") from None
        programme = uow.catalogue.get(d.programme_id, d.programme_version)
        phases = {p["phase"]: p for p in _phase_money(uow.session, d, programme)}
        phase = phases.get(c.phase)
        payment = uow.session.scalar(select(m.Payment).where(m.Payment.claim_id == c.id))
        recovery = uow.session.scalar(select(m.RecoveryOrder).where(m.RecoveryOrder.claim_id == c.id))
        earlier_advances = sum((x.amount_claimed for x in uow.session.scalars(select(m.PaymentClaim).where(
            m.PaymentClaim.dossier_id == d.id, m.PaymentClaim.phase == c.phase, m.PaymentClaim.kind == "advance",
            m.PaymentClaim.id < c.id))), ZERO)
        voted_line = next((ln for ln in (d.voted or {}).get("lines", []) if ln["phase"] == c.phase), None)
        oldest_pending = uow.session.scalar(select(m.PaymentClaim.id).where(
            m.PaymentClaim.dossier_id == d.id, m.PaymentClaim.status == "pending").order_by(m.PaymentClaim.id).limit(1))
        can_pay = (c.status == "pending" and "pay" in allowed_triggers(d.status, user.role))
        return render(request, "claim.html", title=f"Demande de paiement n°{c.id}", c=c, d=d,
                      dossier=dossier_row(d, uow.catalogue), programme=programme, phase=phase, voted_line=voted_line,
                      invoices=_invoice_rows(c, programme), payment=payment, recovery=recovery,
                      earlier_advances=earlier_advances, can_pay=can_pay, oldest_pending=oldest_pending)
