"""What the dossier page shows, read through the services and the tables they write: the summary,
the timeline, the document checklist per stage, the money (each rule that cut an amount and
why), the payment claims, the messages sent and the actions the user's role may take now."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import select, text

from db import models as m
from rules.documents import piece_visible
from rules.money import ZERO
from services.commands import CONSULTANT_KINDS, DOCUMENT_KINDS
from services.letters import available_letters
from services.messages import visible_events
from services.people import display_names
from services.queries import dossier_summary, history
from services.search import in_scope
from services.wording import describe
from states.lifecycle import FINAL_STATES, LOAN_STATES, allowed_triggers
from web.messages_view import messages_context

STAGES = (("candidacy", "Candidature"), ("diagnostic", "Diagnostic (phase 1)"), ("vote", "Proposition au vote"),
          ("payment_claim", "Demandes de paiement"))
# The stage whose pieces the next step of each state needs.
STAGE_OF_STATE = {"draft": "candidacy", "submitted": "candidacy", "eligibility_review": "candidacy",
                  "diagnostic": "diagnostic", "action_plan": "vote", "ready_for_vote": "vote",
                  "approved": "payment_claim", "in_payment": "payment_claim"}


class OutOfScope(Exception):
    """The dossier does not exist, or not for this user: the page answers 404 either way."""


def scoped_dossier(uow, actor, dossier_id: int) -> m.Dossier:
    d = uow.session.get(m.Dossier, dossier_id) if 0 < dossier_id < 2**31 else None
    if d is None or not in_scope(actor, d, uow.catalogue):
        raise OutOfScope()
    return d


def dossier_or_404(uow, actor, dossier_id: int) -> m.Dossier:
    """``scoped_dossier`` for a page or a download: one 404 whether the dossier does not exist or
    is another region's (a page must not tell the two apart)."""
    from fastapi import HTTPException

    try:
        return scoped_dossier(uow, actor, dossier_id)
    except OutOfScope:
        raise HTTPException(404, "Dossier introuvable.") from None


def _checklist(programme, documents: list[m.Document], state: str) -> tuple[list[dict], list[dict]]:
    by_kind: dict[str, list[m.Document]] = defaultdict(list)
    for doc in sorted(documents, key=lambda x: (x.kind, x.version)):
        by_kind[doc.kind].append(doc)
    listed = set()
    stages = []
    current = STAGE_OF_STATE.get(state)
    for key, title in STAGES:
        kinds = list(getattr(programme.documents, key))
        rows = []
        for kind in kinds:
            listed.add(kind)
            versions = by_kind.get(kind, [])
            latest = versions[-1] if versions else None
            status = "missing" if latest is None else latest.review_status
            rows.append({"kind": kind, "latest": latest, "versions": versions, "status": status})
        missing = [r["kind"] for r in rows if r["status"] in ("missing", "refused")]
        stages.append({"key": key, "title": title, "rows": rows, "missing": missing, "current": key == current,
                       "complete": not missing})
    others = [{"kind": kind, "latest": versions[-1], "versions": versions, "status": versions[-1].review_status}
              for kind, versions in sorted(by_kind.items()) if kind not in listed]
    return stages, others


def _phase_money(session, d: m.Dossier, programme) -> list[dict]:
    if not d.voted:
        return []
    paid = defaultdict(lambda: ZERO)
    for p in session.scalars(select(m.Payment).where(m.Payment.dossier_id == d.id)):
        paid[p.phase] += p.amount
    for r in session.scalars(select(m.RecoveryOrder).where(m.RecoveryOrder.dossier_id == d.id)):
        paid[r.phase] -= r.amount
    advances = defaultdict(lambda: ZERO)
    finals = set()
    for c in session.scalars(select(m.PaymentClaim).where(m.PaymentClaim.dossier_id == d.id)):
        if c.kind == "advance":
            advances[c.phase] += c.amount_claimed
        else:
            finals.add(c.phase)
    out = []
    for line in d.voted["lines"]:
        n = line["phase"]
        aid = Decimal(line["aid"])
        rate = programme.phase(n).advance_max_rate
        cap = None if rate is None else (aid * rate).quantize(Decimal("0.01"))
        out.append({"phase": n, "aid": aid, "eligible_expense": Decimal(line["eligible_expense"]),
                    "net_paid": paid[n], "remaining": max(aid - paid[n], ZERO), "advance_rate": rate,
                    "advance_cap": cap, "advances": advances[n],
                    "advance_room": None if cap is None else max(cap - advances[n], ZERO),
                    "final_claimed": n in finals})
    return out


def claims_of(session, dossier_id: int) -> list[dict]:
    payments = {p.claim_id: p for p in session.scalars(select(m.Payment).where(m.Payment.dossier_id == dossier_id))}
    recoveries = {r.claim_id: r for r in session.scalars(
        select(m.RecoveryOrder).where(m.RecoveryOrder.dossier_id == dossier_id))}
    out = []
    for c in session.scalars(select(m.PaymentClaim).where(m.PaymentClaim.dossier_id == dossier_id)
                             .order_by(m.PaymentClaim.id)):
        out.append({"claim": c, "payment": payments.get(c.id), "recovery": recoveries.get(c.id)})
    return out


def _next_step(d: m.Dossier, role: str, stages: list[dict], claims: list[dict], triggers: list[str]) -> str:
    state = d.status
    current = next((s for s in stages if s["current"]), None)
    missing = len(current["missing"]) if current else 0
    pending_claim = any(c["claim"].status == "pending" for c in claims)
    if state in FINAL_STATES:
        return "Dossier terminé : plus aucune action n'est possible ; l'historique reste consultable."
    if role == "auditor":
        return "Consultation seule : rejouez le dossier à une date passée depuis la vue d'audit."
    if role == "officer":
        return {
            "submitted": "Prendre le dossier en instruction.",
            "eligibility_review": (f"Vérifier les pièces de candidature ({missing} {'manquante ou refusée' if missing < 2 else 'manquantes ou refusées'} : les demander) "
                                   "puis déclarer le dossier éligible ou irrecevable." if missing else
                                   "Pièces de candidature complètes : examiner l'éligibilité puis déclarer le dossier "
                                   "éligible (prestataire et devis de phase 1) ou irrecevable."),
            "diagnostic": ("En attente du rapport de diagnostic du prestataire." if missing else
                           "Rapport de diagnostic reçu : l'examiner puis accepter le diagnostic."),
            "action_plan": ("En attente du plan d'action de l'entreprise (pièces et jours de la phase 2)."
                            if missing or "2" not in (d.quotes or {}) else
                            "Plan d'action complet : proposer le dossier au vote d'une séance dont l'ordre du jour est ouvert."),
            "ready_for_vote": "Inscrit à l'ordre du jour : en attente du vote de la séance.",
            "approved": "Voté : en attente d'une demande de paiement de l'entreprise.",
            "in_payment": ("Une demande de paiement attend le service financier." if pending_claim else
                           "En paiement : en attente de la prochaine demande de l'entreprise."),
        }.get(state, "")
    if role == "head":
        return ("Voter le dossier (favorable, défavorable ou ajournement) avec le numéro de délibération."
                if state == "ready_for_vote" else "Aucune action de votre rôle à ce stade.")
    if role == "finance":
        return ("Examiner la demande de paiement en attente, puis payer." if pending_claim
                else "Aucune demande de paiement en attente.")
    if role in ("applicant", "consultant"):
        if missing and "provide_documents" in triggers and current:
            return f"Déposer les pièces manquantes de l'étape « {current['title']} »."
        if state == "action_plan" and "submit_action_plan" in triggers and "2" not in (d.quotes or {}):
            return "Déposer le plan d'action : jours et taux journalier de la phase 2."
        if state in ("approved", "in_payment") and "claim_payment" in triggers and not pending_claim:
            return "Demander un paiement (avance ou solde d'une phase)."
        return "Le dossier est entre les mains de la Région."
    return ""


def open_sessions(session, programme_id: str, today: date) -> list[m.CouncilSession]:
    return list(session.scalars(select(m.CouncilSession).where(
        m.CouncilSession.programme_id == programme_id, m.CouncilSession.agenda_closes_on >= today)
        .order_by(m.CouncilSession.session_date, m.CouncilSession.code)))


# The consultants already assigned in the programme, one index seek each (a "loose index scan"
# over ix_dossiers_programme_consultant): the work is the number of consultants, not of
# dossiers. Both databases run the recursive query; at most 500 names are offered.
_KNOWN_CONSULTANTS = text("""
WITH RECURSIVE known(name) AS (
  SELECT min(consultant) FROM dossiers WHERE programme_id = :programme AND consultant > ''
  UNION ALL
  SELECT (SELECT min(consultant) FROM dossiers WHERE programme_id = :programme AND consultant > known.name)
  FROM known WHERE known.name IS NOT NULL
)
SELECT name FROM known WHERE name IS NOT NULL LIMIT 500""")


def known_consultants(session, programme_id: str) -> list[str]:
    return sorted(session.scalars(_KNOWN_CONSULTANTS, {"programme": programme_id}))


def dossier_page(uow, user, dossier_id: int, today: date) -> dict:
    from web.assign_view import dossier_panel

    s = uow.session
    d = scoped_dossier(uow, user.actor, dossier_id)
    programme = uow.catalogue.get(d.programme_id, d.programme_version)
    summary = dossier_summary(uow, d.id)
    events = visible_events(history(uow, d.id), user.actor)  # no agents' note to the company
    documents = list(s.scalars(select(m.Document).where(m.Document.dossier_id == d.id)))
    # Rule consultant_need_to_know (rules/documents.py): a consultant sees its mission's pieces only.
    hidden_kinds = sorted({doc.kind for doc in documents if not piece_visible(user.role, doc.kind)} |
                          {k for k in DOCUMENT_KINDS if not piece_visible(user.role, k)}) if user.role == "consultant" else []
    documents = [doc for doc in documents if piece_visible(user.role, doc.kind)]
    # Accounts by the name they go by (never `agent.occitanie` on screen).
    people = display_names(s, [d.officer, *(e.get("actor") for e in events),
                               *((e.get("data") or {}).get("officer") for e in events),
                               *((e.get("data") or {}).get("previous") for e in events),
                               *(doc.uploaded_by for doc in documents), *(doc.reviewed_by for doc in documents)])
    for e in events:
        e["text"] = describe(e, people)
    stages, others = _checklist(programme, documents, d.status)
    if hidden_kinds:
        for st in stages:
            st["rows"] = [r for r in st["rows"] if r["kind"] not in hidden_kinds]
            st["missing"] = [k for k in st["missing"] if k not in hidden_kinds]
            st["complete"] = not st["missing"]
    requests = list(s.scalars(select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == d.id)
                              .order_by(m.DocumentRequest.id)))
    claims = claims_of(s, d.id)
    notifications = list(s.scalars(select(m.Notification).where(m.Notification.dossier_id == d.id)
                                   .order_by(m.Notification.created_at, m.Notification.id)))
    triggers = allowed_triggers(d.status, user.role)
    record = d.voted or d.proposal
    upload_kinds = CONSULTANT_KINDS if user.role == "consultant" else DOCUMENT_KINDS
    current = next((st for st in stages if st["current"]), None)
    suggested_kind = next((k for k in (current["missing"] if current else []) if k in upload_kinds), None)
    return {
        "d": d, "people": people, "programme": programme, "summary": summary, "events": events, "stages": stages, "others": others,
        "requests": requests, "open_requests": [r for r in requests if r.status == "open"], "claims": claims,
        "notifications": notifications, "triggers": triggers, "record": record,
        "record_is_vote": d.voted is not None, "phases": _phase_money(s, d, programme),
        "upload_kinds": upload_kinds, "suggested_kind": suggested_kind,
        "sessions": open_sessions(s, d.programme_id, today) if "propose_for_vote" in triggers else [],
        "consultants": known_consultants(s, d.programme_id) if "declare_eligible" in triggers else [],
        "next_step": _next_step(d, user.role, stages, claims, triggers),
        "pending_claims": [c for c in claims if c["claim"].status == "pending"],
        "can_vote": any(t.startswith("vote_") for t in triggers),
        "all_kinds": DOCUMENT_KINDS, "hidden_kinds": hidden_kinds,
        "assign": dossier_panel(uow, d, user, programme),  # work sharing (web.assign_view)
        **loan_view(s, d, programme, today),
        "letters": available_letters(uow, d),
        "msg": messages_context(s, user, d, today),
    }


def loan_view(session, d: m.Dossier, programme, today: date) -> dict:
    """The line, the call, the aid by instrument, the loan's figures and its schedule."""
    from rules import loans as loan_rules
    from services.loan_exports import schedule_rows
    from services.loans import loan_figures, plan_of, repayments_of
    from services.queries import aid_of

    line = programme.line(d.line) if d.line else None
    call = next((w for w in programme.windows if w.code and w.code == d.call_code), None)
    loan = loan_figures(session, d)
    due = None
    if d.loan is not None and d.status in LOAN_STATES:
        due = loan_rules.amount_due(plan_of(d), repayments_of(session, d.id), today)
    return {"line": line if len(programme.dossier_lines) > 1 else None, "call": call, "example": programme.is_example,
            "aid": aid_of(d), "loan": loan, "schedule": schedule_rows(session, d, today), "amount_due": due}
