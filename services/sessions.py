"""Web sessions kept by the server (table `web_sessions`): the browser's cookie carries a random
token, the row its SHA-256, the account's version when it was opened and its end. A session
authenticates only while its row exists, has not ended, and the account is active with that
same version: « Se déconnecter » deletes the row, a password change, a disable or a
« déconnexion partout » moves the version on (and deletes the account's rows)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from db.models_auth import User, WebSession

DEFAULT_SESSION_SECONDS = 8 * 3600


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(uow_factory, clock, *, username: str, token_version: int,
                  seconds: int = DEFAULT_SESSION_SECONDS) -> str:
    """Open a session; returns the token for the cookie (never stored as such). Ended sessions are
    deleted on the way."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    with uow_factory() as uow:
        uow.session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        uow.session.add(WebSession(id=_digest(token), username=username, token_version=token_version,
                                   created_at=now, expires_at=now + timedelta(seconds=seconds)))
        uow.commit()
    return token


def session_user(uow_factory, clock, token: str | None):
    """The account behind a live session (a row of its columns), or None."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    now = clock.now()
    with uow_factory() as uow:
        return uow.session.execute(
            select(User.username, User.display_name, User.role, User.regions, User.siren, User.consultant)
            .join(WebSession, WebSession.username == User.username)
            .where(WebSession.id == _digest(token), WebSession.expires_at > now, User.active.is_(True),
                   User.token_version == WebSession.token_version)).first()


def end_session(uow_factory, token: str | None) -> None:
    """« Se déconnecter »: the session's row goes; its cookie authenticates nothing any more."""
    if not isinstance(token, str) or not token:
        return
    with uow_factory() as uow:
        uow.session.execute(delete(WebSession).where(WebSession.id == _digest(token)))
        uow.commit()
