"""Agents who sign in through an OpenID provider (ProConnect or a region's own): one row per
e-mail address an administrator registered, linked to an account (`users.username`) — either an
account the administrator created, or one provisioned at the first sign-in from the role and the
regions registered here (never a default role). The provider's identity (`issuer`, `subject`) is
bound at the first sign-in; afterwards the e-mail address alone no longer opens the account."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant


class OidcIdentity(Base):
    __tablename__ = "oidc_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_oidc_identity_issuer_subject"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # Lower-cased, as compared with the provider's `email` claim.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # The account it opens; None while pre-registered and not yet signed in.
    username: Mapped[str | None] = mapped_column(String(80), unique=True)
    # A pre-registration: the role, regions and name of the account provisioned at first sign-in.
    role: Mapped[str | None] = mapped_column(String(20))
    regions: Mapped[list[Any]] = mapped_column(JSON)
    display_name: Mapped[str | None] = mapped_column(String(200))
    # The provider's identity, bound at the first sign-in.
    issuer: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Instant)
    first_sign_in_at: Mapped[datetime | None] = mapped_column(Instant)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(Instant)
