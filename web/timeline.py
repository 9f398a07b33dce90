"""An event of a dossier's history, told in French for the timeline (the command id stays visible
for those who want it)."""
from __future__ import annotations

from web.format import CLAIM_KIND_LABELS, KIND_LABELS, OUTCOME_LABELS, eur, day


def _kinds(kinds) -> str:
    return ", ".join(KIND_LABELS.get(k, k) for k in kinds or [])


def describe(e: dict) -> str:
    d = e.get("data") or {}
    c = e["command"]
    if c == "start_candidacy":
        return "Candidature commencée (brouillon)."
    if c == "submit_candidacy":
        n = len(d.get("documents", []))
        return f"Candidature déposée au programme {d.get('programme', '')}" + (f", avec {n} pièce(s)." if n else ".")
    if c == "take_for_review":
        return f"Prise en instruction par {d.get('officer')}."
    if c == "request_documents":
        return f"Pièces demandées : {_kinds(d.get('kinds'))} — caducité le {day(d.get('lapse_on'))} sans réponse."
    if c == "provide_documents":
        docs = ", ".join(f"{KIND_LABELS.get(x['kind'], x['kind'])} (v{x['version']})" for x in d.get("documents", []))
        extra = " Demande de pièces satisfaite." if d.get("fulfilled_requests") else ""
        return f"Pièces déposées : {docs}.{extra}"
    if c == "review_document":
        verdict = "acceptée" if d.get("decision") == "accepted" else "refusée"
        return f"Pièce {KIND_LABELS.get(d.get('kind'), d.get('kind'))} (v{d.get('version')}) {verdict}."
    if c == "declare_eligible":
        p = d.get("phase1") or {}
        return (f"Déclaré éligible ({'PME' if d.get('size_class') == 'sme' else 'ETI'}) ; prestataire "
                f"{d.get('consultant')} ; phase 1 : {p.get('days')} j × {eur(p.get('day_rate'))}.")
    if c == "declare_ineligible":
        return "Déclaré irrecevable."
    if c == "accept_diagnostic":
        return "Diagnostic accepté : le dossier passe au plan d'action."
    if c == "submit_action_plan":
        p = d.get("phase2") or {}
        return f"Plan d'action déposé — phase 2 : {p.get('days')} j × {eur(p.get('day_rate'))}."
    if c == "propose_for_vote":
        total = (d.get("proposal") or {}).get("total")
        return f"Proposé à la séance {d.get('session')} du {day(d.get('session_date'))} — aide proposée {eur(total)}."
    if c == "record_vote":
        outcome = OUTCOME_LABELS.get(d.get("outcome"), d.get("outcome"))
        total = (d.get("voted") or {}).get("total")
        text = f"Séance {d.get('session')} : vote {outcome}"
        if d.get("deliberation"):
            text += f" (délibération {d['deliberation']})"
        if total:
            text += f", aide votée {eur(total)}"
        return text + "."
    if c == "claim_payment":
        if d.get("kind") == "advance":
            return f"Demande d'avance de la phase {d.get('phase')} : {eur(d.get('amount'))}."
        assessment = d.get("assessment") or {}
        return (f"Demande de solde de la phase {d.get('phase')} : {len(d.get('invoices') or [])} ligne(s) de facture, "
                f"dépense éligible {eur(assessment.get('eligible_expense'))}.")
    if c == "pay":
        kind = CLAIM_KIND_LABELS.get(d.get("kind"), d.get("kind"))
        text = f"Paiement ({kind}) de la phase {d.get('phase')} : {eur(d.get('amount'))}"
        if d.get("recovery"):
            text += f" ; ordre de reversement de {eur(d['recovery'])}"
        if d.get("closed"):
            text += " — dossier soldé et clôturé"
        return text + "."
    if c == "remind":
        return f"Relance automatique J+{d.get('after_days')}."
    if c == "lapse":
        return "Dossier caduc : les pièces demandées n'ont pas été remises à temps."
    if c == "withdraw":
        return "Abandon par l'entreprise."
    if c == "close":
        return f"Clôture ({d.get('cause')}) ; reliquat annulé {eur(d.get('cancelled_remainder'))}."
    return c
