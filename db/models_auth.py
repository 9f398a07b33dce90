"""Users of the API and the web (argon2-hashed passwords, one role of SPEC §1, a scope), their
web sessions and sign-in failures (docs/security.md), and the idempotency keys of the API's POST
requests (a retried request applies once)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant
from states.lifecycle import ROLES as LIFECYCLE_ROLES

# A person's roles: the lifecycle's (states.lifecycle.ROLES, their one list) but `system`, which
# is no one's account (deadlines, reminders).
ROLES = tuple(r for r in LIFECYCLE_ROLES if r != "system")
# Roles whose scope is a list of regions (the programmes of those regions).
REGIONAL_ROLES = ("officer", "head", "finance", "auditor")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # argon2id, the PHC string of argon2-cffi ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    # officer, head, finance, auditor: the regions whose programmes they work on.
    regions: Mapped[list[Any]] = mapped_column(JSON)
    # applicant: the company (SIREN) it acts for.
    siren: Mapped[str | None] = mapped_column(String(9))
    # consultant: the referenced consultant's name, as recorded on the dossiers it is assigned to.
    consultant: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Instant)
    disabled_at: Mapped[datetime | None] = mapped_column(Instant)
    # Carried by every token (claim `ver`) and web session: a password change, a disable or a
    # « déconnexion partout » adds one, and everything issued before stops authenticating.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    password_changed_at: Mapped[datetime | None] = mapped_column(Instant)


class WebSession(Base):
    """One signed-in browser. The cookie carries a random token; the row keeps only its SHA-256.
    « Se déconnecter » deletes the row: the cookie alone authenticates nothing."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_username", "username"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 (hex) of the cookie's token
    username: Mapped[str] = mapped_column(String(80))
    token_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Instant)
    expires_at: Mapped[datetime] = mapped_column(Instant)


class SigninFailure(Base):
    """The failed sign-ins of one identifier as typed, an account or not (an unknown name is
    throttled exactly like a known one: nothing tells them apart). Shared by every API worker:
    the lock holds whichever process answers. Deleted by a successful sign-in, a password change
    or a re-enabling."""

    __tablename__ = "signin_failures"
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(Instant)
    # No attempt is checked before this instant (the growing delay, then the lock).
    locked_until: Mapped[datetime | None] = mapped_column(Instant)


class IdempotencyKey(Base):
    """One `Idempotency-Key` of one user on one route. The row and the command's answer are
    written in the same transaction as the command it protects, so the command, its answer and
    the key commit together or not at all; a retry with the same key is answered from it."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("key", "username", "route", name="uq_idempotency_key_user_route"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(80))
    route: Mapped[str] = mapped_column(String(300))
    # SHA-256 of what the request asked (body, If-Match): the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None only inside the command's transaction, until its answer is written (a committed row
    # without one was left by a version that stored the answer in a second transaction).
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Instant)
    completed_at: Mapped[datetime | None] = mapped_column(Instant)
