"""Readable history lines (`usine dossier history`): French for the people who read them (the event's
reading is `services.wording.describe`, shared with the web and the exports), the command id for the rest."""
from __future__ import annotations

from datetime import datetime

from rules.calendar import PARIS
from services.wording import describe as describe_event
from states.lifecycle import ROLE_LABELS, STATE_LABELS


def describe(e: dict) -> str:
    at = datetime.fromisoformat(e["at"]).astimezone(PARIS)
    move = (f"{STATE_LABELS[e['state_before']]} → {STATE_LABELS[e['state_after']]}"
            if e["state_before"] != e["state_after"] else STATE_LABELS[e["state_after"]])
    reason = f" — motif : {e['reason']}" if e.get("reason") else ""
    who = f"{e['actor']} ({ROLE_LABELS.get(e['role'], e['role'])})"
    return (f"#{e['seq']:<3} {at:%d/%m/%Y %H:%M}  {who}\n      [{e['command']}] {describe_event(e)}{reason}\n"
            f"      état : {move}")
