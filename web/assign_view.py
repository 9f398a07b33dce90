"""What the work-sharing partials show (issue 19, part 4): on a dossier page, to whom it is
assigned and what the user may do about it; on the queue, the action bar of a selection. Read
only: the rules are `rules.assignment`'s, the writes `services.assignment`'s and
`services.bulk_actions`'."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from db import models as m
from services.assignment import officers_for
from services.bulk_actions import ACTIONS
from services.commands import DOCUMENT_KINDS
from states.lifecycle import FINAL_STATES, roles_of

ASSIGNING_ROLES = ("officer", "head")


def dossier_panel(uow, d: m.Dossier, user, programme) -> dict | None:
    """The assignment card of a dossier page: None for the roles that do not assign."""
    if user.role not in ASSIGNING_ROLES:
        return None
    finished = d.status in FINAL_STATES
    colleagues = [o for o in officers_for(uow, (programme.region,)) if o["username"] != d.officer]
    if user.role == "officer":
        colleagues = [o for o in colleagues if o["username"] != user.actor.name]
    return {"finished": finished, "colleagues": colleagues,
            "can_take": not finished and user.role == "officer" and d.officer is None,
            "can_hand_over": not finished and user.role == "officer" and d.officer == user.actor.name,
            "can_route": not finished and user.role == "head"}


def queue_bar(uow, user, programmes, today: date) -> dict | None:
    """The queue's action bar: whom to assign to, which pieces, which session (open agendas)."""
    if user.role not in ASSIGNING_ROLES:
        return None
    ids = [p.id for p in programmes]
    sessions = list(uow.session.execute(
        select(m.CouncilSession.code, m.CouncilSession.session_date, m.CouncilSession.agenda_closes_on)
        .where(m.CouncilSession.programme_id.in_(ids), m.CouncilSession.agenda_closes_on >= today)
        .order_by(m.CouncilSession.session_date, m.CouncilSession.code))) if ids else []
    # The lifecycle's machines say who requests pieces, who proposes for a vote.
    return {"officers": officers_for(uow, user.actor.regions), "kinds": DOCUMENT_KINDS, "actions": ACTIONS,
            "role": user.role, "can_request": user.role in roles_of("request_documents"),
            "sessions": sessions if user.role in roles_of("propose_for_vote") else []}
