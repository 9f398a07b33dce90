"""`usine notifications preview KIND --dossier ID`: the letter of a kind for one dossier, rendered
now with the current templates, queueing nothing.

When the dossier already produced a message of this kind, its stored context is rendered again
(so the preview shows what was sent, or what the current templates would make of it); otherwise
the context is built from the dossier as it stands, the way the command or sweep would."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from db import models as m
from notifications.rendering import KINDS, RenderedMessage, render
from rules import french, settlement
from rules.calendar import paris_date
from rules.errors import InvalidInput
from rules.money import ZERO
from services.bulk import company_recipient, officer_recipient
from services.clock import Clock
from services.outbox import applicant_recipient, dossier_context
from services.people import display_name


class PreviewUnavailable(InvalidInput):
    def __init__(self, kind: str, message: str):
        super().__init__("kind", f"{kind} : {message}", rule="preview_unavailable")


def preview(uow, *, kind: str, dossier_id: int, clock: Clock) -> tuple[RenderedMessage, dict, str]:
    """(rendered message, recipient, where the context came from: "stored" or "built")."""
    if kind not in KINDS:
        raise InvalidInput("kind", f"kind : type de message inconnu « {kind} » (connus : {', '.join(KINDS)}).")
    session = uow.session
    dossier = uow.dossier(dossier_id)
    stored = session.scalar(select(m.Notification).where(m.Notification.dossier_id == dossier.id,
                                                         m.Notification.kind == kind)
                            .order_by(m.Notification.id.desc()).limit(1))
    if stored is not None:
        return render(kind, stored.context), stored.context["recipient"], "stored"
    context, recipient = _build(uow, kind, dossier, clock)
    context = {**context, "recipient": recipient}
    return render(kind, context), recipient, "built"


def _build(uow, kind: str, dossier: m.Dossier, clock: Clock) -> tuple[dict, dict]:
    session = uow.session
    programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
    today = paris_date(clock.now())
    applicant = applicant_recipient(dossier)
    letter = {"dossier": dossier_context(dossier, programme)}
    if kind == "candidacy_received":
        return letter | {"submitted_at": dossier.submitted_at.isoformat()}, applicant
    if kind in ("documents_requested", "documents_reminder", "documents_final_notice", "dossier_lapsed"):
        req = session.scalar(select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == dossier.id)
                             .order_by(m.DocumentRequest.id.desc()).limit(1))
        if req is None:
            raise PreviewUnavailable(kind, "aucune demande de pièces n'a été faite pour ce dossier.")
        if kind == "dossier_lapsed":
            return letter | {"reason": f"pièces demandées non fournies au {french.day(req.lapse_on)}",
                             "lapsed_on": req.lapse_on.isoformat()}, applicant
        steps = [s for s in programme.reminders.steps
                 if s.kind == kind or kind == "documents_requested"]
        extra = {"kinds": req.kinds, "requested_on": req.requested_on.isoformat(), "lapse_on": req.lapse_on.isoformat()}
        if kind != "documents_requested":
            if not steps:
                raise PreviewUnavailable(kind, "le programme ne prévoit pas ce rappel.")
            extra["step_day"] = steps[0].after_days
        return letter | extra, applicant
    if kind == "eligibility_decision":
        if dossier.status == "rejected" and not dossier.quotes:
            reason = session.scalar(select(m.Event.reason).where(m.Event.dossier_id == dossier.id,
                                                                 m.Event.command == "declare_ineligible"))
            return letter | {"decision": "ineligible", "reason": reason, "consultant": None, "phase1": None}, applicant
        quote = (dossier.quotes or {}).get("1")
        if quote is None:
            raise PreviewUnavailable(kind, "le devis de la phase 1 n'est pas encore enregistré.")
        cap = programme.money.day_rate_cap
        days, rate = int(quote["days"]), Decimal(quote["day_rate"])
        return letter | {"decision": "eligible", "reason": None, "consultant": dossier.consultant,
                         "phase1": {"days": days, "day_rate": str(rate),
                                    "eligible_expense": str(days * min(rate, cap)) if cap is not None else None}}, applicant
    if kind == "vote_result":
        record = dossier.voted or dossier.proposal
        if record is None:
            raise PreviewUnavailable(kind, "le dossier n'a pas encore été proposé au vote.")
        session_row = dossier.session
        aid = {f"phase{line['phase']}": line["aid"] for line in record["lines"]} | {"total": record["total"]}
        return letter | {"outcome": "approved", "session": session_row.code if session_row else "(séance)",
                         "session_date": (session_row.session_date if session_row else today).isoformat(),
                         "deliberation": dossier.deliberation or "(numéro de délibération)", "aid": aid,
                         # Subsidies only count for the convention (a loan is repaid), as record_vote says.
                         "convention_required": sum((Decimal(line["aid"]) for line in record["lines"]), ZERO)
                         > programme.money.convention_threshold,
                         "loans": [line["loan"] for line in record["lines"] if line.get("loan")]}, applicant
    if kind == "payment_issued":
        payment = session.scalar(select(m.Payment).where(m.Payment.dossier_id == dossier.id)
                                 .order_by(m.Payment.id.desc()).limit(1))
        if payment is None:
            raise PreviewUnavailable(kind, "aucun paiement n'a été fait pour ce dossier.")
        return letter | {"phase": payment.phase, "payment_kind": payment.kind, "amount": str(payment.amount),
                         "paid_total": str(dossier.paid_total - dossier.recovered_total), "recovery_amount": None,
                         "excluded_lines": []}, applicant
    if kind == "dossier_closed":
        from services.loans import loan_figures

        net = dossier.paid_total - dossier.recovered_total
        aid_total = dossier.aid_total or ZERO
        loan = loan_figures(session, dossier) if dossier.loan is not None else None
        return letter | {"aid_total": str(aid_total), "paid_total": str(net),
                         "cancelled_remainder": str(settlement.cancelled_remainder(dossier.aid_total, net)), "closed_on": today.isoformat(),
                         **({"loan": loan} if loan else {})}, applicant
    if kind == "daily_digest":
        from services.digest import officer_deadlines

        if not dossier.officer:
            raise PreviewUnavailable(kind, "aucun chargé de mission n'instruit ce dossier.")
        items = officer_deadlines(session, today).get(dossier.officer, [])
        shown = display_name(session, dossier.officer)
        return {"officer_name": shown, "for_date": today.isoformat(), "items": items}, \
            {**officer_recipient(dossier.officer), "name": shown}
    if kind in ("window_opening", "window_closing"):
        windows = sorted(uow.catalogue.latest(programme.id).windows, key=lambda w: w.opens_on)
        window = next((w for w in windows if w.closes_on >= today), windows[-1] if windows else None)
        if window is None:
            raise PreviewUnavailable(kind, "le programme n'a aucune fenêtre de dépôt connue.")
        facts = dossier.company_facts
        drafts = list(session.scalars(select(m.Dossier.reference).where(
            m.Dossier.company_id == dossier.company_id, m.Dossier.programme_id == programme.id,
            m.Dossier.status == "draft").order_by(m.Dossier.id)))
        if kind == "window_closing" and not drafts:
            drafts = [dossier.reference]
        return {"programme": {"id": programme.id, "name": programme.name, "region": programme.region},
                "window": {"opens_on": window.opens_on.isoformat(), "closes_on": window.closes_on.isoformat(),
                           "label": window.label},
                "company": {"name": facts["name"], "siren": facts["siren"]}, "drafts": drafts}, \
            company_recipient(name=facts["name"], siren=facts["siren"], email=facts.get("email"))
    if kind == "agenda_closing":
        if not dossier.officer:
            raise PreviewUnavailable(kind, "aucun chargé de mission n'instruit ce dossier.")
        council = dossier.session or session.scalar(
            select(m.CouncilSession).where(m.CouncilSession.programme_id == programme.id,
                                           m.CouncilSession.agenda_closes_on >= today)
            .order_by(m.CouncilSession.agenda_closes_on).limit(1))
        if council is None:
            raise PreviewUnavailable(kind, "aucune séance à venir n'est connue pour ce programme.")
        what = ("plan d'action déposé : à proposer au vote" if "2" in (dossier.quotes or {})
                else "plan d'action attendu de l'entreprise")
        return {"programme": {"id": programme.id, "name": programme.name, "region": programme.region},
                "session": {"code": council.code, "session_date": council.session_date.isoformat(),
                            "agenda_closes_on": council.agenda_closes_on.isoformat()},
                "officer_name": display_name(session, dossier.officer),
                "items": [{"reference": dossier.reference, "company_name": dossier.company_facts["name"],
                           "what": what}]}, {**officer_recipient(dossier.officer),
                                            "name": display_name(session, dossier.officer)}
    raise PreviewUnavailable(kind, "aperçu non disponible pour ce type de message.")
