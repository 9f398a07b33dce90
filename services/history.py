"""Readable history lines (`usine dossier history`): French for the people who read them (the event's
reading is `services.wording.describe`, shared with the web and the exports), the command id for the rest."""
from __future__ import annotations

from datetime import datetime

from rules import french
from services.wording import describe as describe_event
from services.wording import fr_instant
from states.lifecycle import ROLE_LABELS, STATE_LABELS


def describe(e: dict) -> str:
    at = datetime.fromisoformat(e["at"])
    move = (f"{STATE_LABELS[e['state_before']]} → {STATE_LABELS[e['state_after']]}"
            if e["state_before"] != e["state_after"] else STATE_LABELS[e["state_after"]])
    reason = f" — motif : {e['reason']}" if e.get("reason") else ""
    who = f"{e['actor']} ({ROLE_LABELS.get(e['role'], e['role'])})"
    return (f"#{e['seq']:<3} {french.instant(at)}  {who}\n      [{e['command']}] {describe_event(e)}{reason}\n"
            f"      état : {move}")


# -- messages, annotations and expert opinions (services.messages) --------------------------------
# Their French sentences, read by `services.wording.describe` like every other event's.
_FROM = {"agent": "de la Région", "applicant": "de l'entreprise", "consultant": "du prestataire référencé"}
_TO = {"applicant": "à l'entreprise", "consultant": "au prestataire référencé"}
_OPINIONS = {"favourable": "favorable", "reserved": "réservé", "unfavourable": "défavorable"}


def _attachments(d: dict) -> str:
    n = len(d.get("attachments") or [])
    return "" if not n else (" avec une pièce jointe" if n == 1 else f" avec {n} pièces jointes")


def _message(d: dict, names: dict) -> str:
    if d.get("from") == "agent":
        return f"Message de la Région {_TO.get(d['thread'], d['thread'])}{_attachments(d)}."
    return f"Message {_FROM[d['from']]} à la Région{_attachments(d)}."


def _expert_kind(d: dict) -> str:
    return "agent de la Région" if d.get("kind") == "agent" else "expert extérieur"


NOTE_SENTENCES = {
    "send_message": _message,
    "annotate": lambda d, names: "Annotation interne des agents (non visible de l'entreprise ni du prestataire).",
    "invite_expert": lambda d, names: (f"Avis demandé à {d['expert']} ({_expert_kind(d)}) ; lien valable jusqu'au "
                                       f"{fr_instant(d['expires_at'])}."),
    "give_opinion": lambda d, names: f"Avis {_OPINIONS[d['opinion']]} rendu ({_expert_kind(d)}).",
}
