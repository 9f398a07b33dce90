"""Readable history lines: French for the people who read them, the command id for the rest."""
from __future__ import annotations

from datetime import datetime

from rules.calendar import PARIS
from states.lifecycle import STATE_LABELS

ROLE_LABELS = {"applicant": "entreprise", "consultant": "prestataire", "officer": "chargé(e) de mission",
               "head": "chef(fe) de service", "finance": "service financier", "auditor": "auditeur",
               "admin": "administrateur", "system": "Usine (automatique)"}


def _what(e: dict) -> str:
    d = e["data"] or {}
    c = e["command"]
    if c == "submit_candidacy":
        return f"candidature déposée ({d.get('programme')}), {len(d.get('documents', []))} pièce(s)"
    if c == "take_for_review":
        return "prise en instruction"
    if c == "request_documents":
        return f"demande de pièces : {', '.join(d.get('kinds', []))} — caducité le {d.get('lapse_on')}"
    if c == "provide_documents":
        return "pièces déposées : " + ", ".join(f"{x['kind']} v{x['version']}" for x in d.get("documents", []))
    if c == "review_document":
        return f"pièce {d.get('kind')} v{d.get('version')} : {d.get('decision')}"
    if c == "declare_eligible":
        p = d.get("phase1", {})
        return f"éligible ({d.get('size_class')}) — prestataire {d.get('consultant')}, phase 1 : {p.get('days')} j × {p.get('day_rate')} €"
    if c == "declare_ineligible":
        return "irrecevable"
    if c == "accept_diagnostic":
        return "diagnostic accepté"
    if c == "submit_action_plan":
        p = d.get("phase2", {})
        return f"plan d'action déposé — phase 2 : {p.get('days')} j × {p.get('day_rate')} €"
    if c == "propose_for_vote":
        return f"proposé à la séance {d.get('session')} — aide proposée {d.get('proposal', {}).get('total')} €"
    if c == "record_vote":
        total = (d.get("voted") or {}).get("total")
        extra = f", aide votée {total} €" if total else ""
        return f"séance {d.get('session')} : {d.get('outcome')} (délibération {d.get('deliberation') or '—'}){extra}"
    if c == "claim_payment":
        what = f"avance de {d.get('amount')} €" if d.get("kind") == "advance" else "demande de solde"
        return f"demande de paiement phase {d.get('phase')} : {what}"
    if c == "pay":
        extra = f", ordre de reversement {d['recovery']} €" if d.get("recovery") else ""
        closed = " — dossier soldé" if d.get("closed") else ""
        return f"paiement phase {d.get('phase')} ({d.get('kind')}) : {d.get('amount')} €{extra}{closed}"
    if c == "remind":
        return f"relance J+{d.get('after_days')} ({d.get('kind')})"
    if c == "lapse":
        return "dossier caduc"
    if c == "withdraw":
        return "abandon par l'entreprise"
    if c == "close":
        return f"clôture ({d.get('cause')}), reliquat annulé {d.get('cancelled_remainder')} €"
    return c


def describe(e: dict) -> str:
    at = datetime.fromisoformat(e["at"]).astimezone(PARIS)
    move = (f"{STATE_LABELS[e['state_before']]} → {STATE_LABELS[e['state_after']]}"
            if e["state_before"] != e["state_after"] else STATE_LABELS[e["state_after"]])
    reason = f" — motif : {e['reason']}" if e.get("reason") else ""
    who = f"{e['actor']} ({ROLE_LABELS.get(e['role'], e['role'])})"
    return (f"#{e['seq']:<3} {at:%d/%m/%Y %H:%M}  {who}\n      [{e['command']}] {_what(e)}{reason}\n"
            f"      état : {move}")
