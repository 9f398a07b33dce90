"""What the dossier page shows of its messages, annotations and expert opinions, and the unread
counts of the work queue — read through `services.messages` (scope and visibility are its)."""
from __future__ import annotations

from rules.calendar import paris_date
from services import messages
from services.people import display_names

THREAD_TITLES = {"applicant": "Échange avec l'entreprise", "consultant": "Échange avec le prestataire référencé"}
_UNREAD = "usine.messages_unread"


def messages_context(session, user, d, today) -> dict:
    """The `msg` of the dossier page (the same session as the page: one transaction)."""
    actor = user.actor
    rows = messages.messages_of(session, actor, d.id)
    threads = [t for t in messages.threads_of(actor) if t == "applicant" or d.consultant]
    notes = messages.annotations_of(session, actor, d.id)
    invitations = messages.invitations_of(session, actor, d.id)
    people = display_names(session, [*(r["author"] for r in rows), *(n.author for n in notes),
                                     *(i.invited_by for i in invitations), *(r["read_by"] for r in rows)])
    side = messages.side_of(actor)
    writable = d.anonymised_at is None and side is not None
    return {
        "threads": [{"key": t, "title": THREAD_TITLES[t], "messages": [r for r in rows if r["thread"] == t],
                     "can_write": writable} for t in threads],
        "people": people,
        "unread": sum(1 for r in rows if r["unread"]),
        "agent": actor.role in (*messages.REGION_WRITER_ROLES, "auditor"),
        "annotations": notes, "can_annotate": writable and actor.role in messages.REGION_WRITER_ROLES,
        "invitations": invitations, "can_invite": writable and actor.role in messages.INVITER_ROLES,
        "opinions": messages.OPINIONS, "expert_kinds": messages.EXPERT_KINDS,
        "expired": {i.id for i in invitations if i.used_at is None and paris_date(i.expires_at) < today},
    }


def unread_for_page(request, items) -> dict[int, int]:
    """{dossier id: messages unread by the user's side} for the dossiers of a listed page: one
    grouped query a page (kept on the request), in its own read-only unit of work."""
    cached = getattr(request.state, _UNREAD.replace(".", "_"), None)
    if cached is not None:
        return cached
    user = getattr(request.state, "user", None)
    counts: dict[int, int] = {}
    ids = [row["id"] for row in items if isinstance(row, dict) and "id" in row]
    if user is not None and ids:
        with request.app.state.web.uow_factory() as uow:
            counts = messages.unread_counts(uow.session, user.actor, ids)
    setattr(request.state, _UNREAD.replace(".", "_"), counts)
    return counts


def mark_seen(web, user, dossier_id: int) -> None:
    """The dossier page was shown: the messages sent to the user's side are read (after the
    page's own unit of work, which showed them as new; a dossier out of scope marks nothing)."""
    from web.dossier_view import OutOfScope, scoped_dossier

    with web.uow_factory() as uow:
        try:
            scoped_dossier(uow, user.actor, dossier_id)
        except OutOfScope:
            return
        messages.mark_read(uow=uow, clock=web.clock, actor=user.actor, dossier_id=dossier_id)
