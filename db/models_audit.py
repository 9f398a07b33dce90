"""Audit anchors: the heads of every dossier's hash chain, recorded at intervals (daily by the
scheduled flow), each anchor chained to the previous one. An anchored dossier whose events are
deleted — the whole dossier with them — is named by `usine audit verify`.

Anchoring only reads the events table: it never locks it, so commands are not serialized."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base
from db.types import Instant


class AuditAnchor(Base):
    __tablename__ = "audit_anchors"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    anchored_at: Mapped[datetime] = mapped_column(Instant)
    dossiers: Mapped[int]          # dossiers anchored so far (cumulative)
    events: Mapped[int]            # events covered so far: the sum of the anchored head numbers
    changed: Mapped[int]           # heads recorded by this anchor (new or moved since the previous one)
    delta_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditAnchorHead(Base):
    """One dossier's chain head at one anchor. No foreign key on purpose: the row must outlive
    the dossier it witnesses."""

    __tablename__ = "audit_anchor_heads"
    __table_args__ = (UniqueConstraint("anchor_seq", "dossier_reference"),
                      Index("ix_audit_anchor_heads_reference", "dossier_reference", "anchor_seq"))
    id: Mapped[int] = mapped_column(primary_key=True)
    anchor_seq: Mapped[int]
    dossier_reference: Mapped[str] = mapped_column(String(32))
    dossier_id: Mapped[int]
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
