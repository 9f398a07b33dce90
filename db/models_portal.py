"""The applicant portal's drafts (web/routes_portal.py, services/candidacy_drafts.py): what a
company typed in the candidacy form, step by step, kept between sessions until it is submitted.
A step's values are stored only once the step passed its checks; the draft dossier itself
(`dossiers`, state `draft`) is created by `services.commands.start_candidacy` once the form steps
are done, so that the pieces can be uploaded to it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant


class CandidacyDraft(Base):
    __tablename__ = "candidacy_drafts"
    __table_args__ = (Index("ix_candidacy_drafts_user", "username", "submitted_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    siren: Mapped[str] = mapped_column(String(9))
    programme_id: Mapped[str] = mapped_column(String(64))
    call_code: Mapped[str | None] = mapped_column(String(32))
    # {"entreprise": {...}, "projet": {...}, "de_minimis": {...}}: each step's checked values, as typed.
    steps: Mapped[dict[str, Any]] = mapped_column(JSON)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)
    submitted_at: Mapped[datetime | None] = mapped_column(Instant)
