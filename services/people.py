"""People by the name they go by. Commands record who acted by their account name (the web's
`Actor.name` is the username, e.g. `agent.occitanie`); what a person reads — a page, a letter's
« Bonjour … » — names them by their display name (« Claire Martin, chargée de mission
(Occitanie) »). A name that is no account (a scenario's actor, a consultant's firm) stays as it is."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select

from db.models_auth import User


def display_names(session, names: Iterable[str | None]) -> dict[str, str]:
    """{account name: display name} for those of `names` that are accounts; one query."""
    wanted = sorted({n for n in names if n})
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        for username, display in session.execute(
                select(User.username, User.display_name).where(User.username.in_(wanted[i:i + 500]))):
            if display:
                out[username] = display
    return out


def display_name(session, name: str | None) -> str | None:
    if not name:
        return name
    return display_names(session, [name]).get(name, name)
