"""Messages of a dossier (officers ↔ the company, officers ↔ the consultant), their attachments,
the agents' private annotations and the expert opinions asked by signed link
(`services.messages`). Each message, annotation, invitation and opinion is also an event of the
dossier's history, which carries the SHA-256 of its text (the text itself stays here)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant


class DossierMessage(Base):
    __tablename__ = "dossier_messages"
    __table_args__ = (Index("ix_dossier_messages_unread", "dossier_id", "read_at", "author_side"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    # The outside party of the exchange: "applicant" (the company) or "consultant".
    thread: Mapped[str] = mapped_column(String(12))
    author: Mapped[str] = mapped_column(String(200))
    author_role: Mapped[str] = mapped_column(String(20))
    author_side: Mapped[str] = mapped_column(String(12))  # agent, applicant, consultant
    body: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(Instant)
    event_seq: Mapped[int] = mapped_column(Integer)
    # The read mark of the receiving side (the agents, or the outside party).
    read_at: Mapped[datetime | None] = mapped_column(Instant)
    read_by: Mapped[str | None] = mapped_column(String(200))


class MessageAttachment(Base):
    __tablename__ = "message_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("dossier_messages.id"), index=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    # RGPD: when the file was deleted from the storage (its sha256 and size stay).
    content_deleted_at: Mapped[datetime | None] = mapped_column(Instant)


class DossierAnnotation(Base):
    """A private note of the agents: never shown to the company nor to the consultant."""

    __tablename__ = "dossier_annotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    author_role: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    written_at: Mapped[datetime] = mapped_column(Instant)
    event_seq: Mapped[int] = mapped_column(Integer)


class ExpertInvitation(Base):
    """An officer's request for an opinion on one dossier, sent by e-mail as a signed link that
    expires (`expires_at`, from the service clock) and serves once (`used_at`)."""

    __tablename__ = "expert_invitations"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    expert_name: Mapped[str] = mapped_column(String(200))
    expert_email: Mapped[str] = mapped_column(String(254))
    expert_kind: Mapped[str] = mapped_column(String(12))  # agent, outside
    invited_by: Mapped[str] = mapped_column(String(200))
    invited_at: Mapped[datetime] = mapped_column(Instant)
    expires_at: Mapped[datetime] = mapped_column(Instant)
    used_at: Mapped[datetime | None] = mapped_column(Instant)
    opinion: Mapped[str | None] = mapped_column(String(16))  # favourable, reserved, unfavourable
    opinion_text: Mapped[str | None] = mapped_column(Text)
    opinion_sha256: Mapped[str | None] = mapped_column(String(64))
