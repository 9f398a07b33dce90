"""SQLAlchemy 2 models. The dossier's `status` is assigned only by `services.commands.base._move`,
from the lifecycle of `states/`, and a dossier's row (its state, its amounts) is written only by
`services.dossier_writes.write_dossiers` — nowhere else (`tests/dossier_write_guard.py`)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DDL, JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.types import Instant, Money


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)
    siren: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(Instant)


class ProgrammeVersion(Base):
    __tablename__ = "programme_versions"
    __table_args__ = (UniqueConstraint("programme_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime] = mapped_column(Instant)


class CouncilSession(Base):
    __tablename__ = "council_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    session_date: Mapped[date] = mapped_column(Date)
    agenda_closes_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(Instant)
    # Set when the head of service planned the session ahead (`services.council.plan_session`);
    # None for a session a first proposal (or an adjourned dossier's vote) brought into being.
    planned_by: Mapped[str | None] = mapped_column(String(200))


class Dossier(Base):
    __tablename__ = "dossiers"
    __table_args__ = (
        # A programme's dossiers in one state, in the queue's order (the queue filtered by state);
        # its first two columns serve the counts by programme and state.
        Index("ix_dossiers_programme_status_queue", "programme_id", "status", "next_deadline_at", "submitted_at",
              "id"),
        # The queue, soonest stored deadline first (`services.deadlines`); the listings' sorts
        # and filters (docs/performance.md).
        Index("ix_dossiers_queue", "next_deadline_at", "submitted_at", "id"),
        Index("ix_dossiers_programme_queue", "programme_id", "next_deadline_at", "submitted_at", "id"),
        Index("ix_dossiers_updated", "updated_at", "id"),
        Index("ix_dossiers_submitted", "submitted_at", "id"),
        Index("ix_dossiers_officer", "officer", "status"),
        # The queue's « À moi » and « Non affectés » (officer = … / officer IS NULL), in its order.
        Index("ix_dossiers_officer_queue", "officer", "next_deadline_at", "submitted_at", "id"),
        Index("ix_dossiers_programme_consultant", "programme_id", "consultant"),
        # Substring search (`services.search`): a trigram index on PostgreSQL (pg_trgm, created
        # with the schema); on SQLite a plain index, of no use to LIKE '%…%' (a scan of this one
        # column), kept so that both schemas carry the same indexes.
        Index("ix_dossiers_search_trgm", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    programme_version: Mapped[int]
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    company_facts: Mapped[dict[str, Any]]
    size_class: Mapped[str | None] = mapped_column(String(8))
    consultant: Mapped[str | None] = mapped_column(String(200))
    officer: Mapped[str | None] = mapped_column(String(200))
    quotes: Mapped[dict[str, Any]]
    proposal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    voted: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("council_sessions.id"), index=True)
    deliberation: Mapped[str | None] = mapped_column(String(64))
    voted_on: Mapped[date | None] = mapped_column(Date)
    aid_total: Mapped[Decimal | None] = mapped_column(Money)
    paid_total: Mapped[Decimal] = mapped_column(Money)
    recovered_total: Mapped[Decimal] = mapped_column(Money)
    cancelled_remainder: Mapped[Decimal | None] = mapped_column(Money)
    # The balance must be claimed by this day (cut-off + the programme's delay, working day).
    payment_deadline_on: Mapped[date | None] = mapped_column(Date, index=True)
    submitted_at: Mapped[datetime] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant)
    closed_at: Mapped[datetime | None] = mapped_column(Instant)
    # SPEC §11: the programme line of this dossier, the call it was submitted under, the earlier
    # dossier it cites (Pays de la Loire), the approved diagnostic dossier whose plan it carries
    # out (Nouvelle-Aquitaine) and the plan's actions (of a diagnostic dossier: its plan; of an
    # aid dossier: the action numbers it implements).
    line: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    call_code: Mapped[str | None] = mapped_column(String(32), index=True)
    cites_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    actions: Mapped[list[Any] | None] = mapped_column(JSON)
    # The loan, once disbursed: its terms and disbursement date fix the schedule (rules.loans);
    # the outstanding principal and the oldest unpaid due date are kept for the sweeps.
    loan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    loan_outstanding: Mapped[Decimal | None] = mapped_column(Money)
    loan_next_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    written_off: Mapped[Decimal | None] = mapped_column(Money)
    # RGPD: when its personal data were anonymised, its retention period over (services.retention).
    anonymised_at: Mapped[datetime | None] = mapped_column(Instant, index=True)
    # Derived, written with every change by `services.deadlines.refresh` (never by hand): the
    # dossier's next deadline and what it is (documents, agenda, session, payment), which the
    # queue sorts on, and the folded text a search looks in (reference, company, SIREN,
    # consultant, officer: lower case, accents removed).
    next_deadline_at: Mapped[date | None] = mapped_column(Date)
    next_deadline_kind: Mapped[str | None] = mapped_column(String(12))
    search_text: Mapped[str | None] = mapped_column(Text)

    # Loaded only when asked for: a command reads the facts frozen on the dossier, not the company row.
    company: Mapped[Company] = relationship()
    session: Mapped[CouncilSession | None] = relationship()

    __mapper_args__ = {"version_id_col": version}


class Document(Base):
    """One uploaded version of a document; a new version is a new row, never an update of the file."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("dossier_id", "kind", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    version: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_role: Mapped[str] = mapped_column(String(20))
    uploaded_at: Mapped[datetime] = mapped_column(Instant)
    review_status: Mapped[str] = mapped_column(String(12), default="pending")
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(Instant)
    # RGPD: when the piece's file was deleted from the storage (its sha256 and size stay).
    content_deleted_at: Mapped[datetime | None] = mapped_column(Instant)


class DocumentRequest(Base):
    __tablename__ = "document_requests"
    __table_args__ = (Index("ix_document_requests_open", "status", "requested_on"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    kinds: Mapped[list[Any]]
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(Instant)
    requested_on: Mapped[date] = mapped_column(Date)
    lapse_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))  # open, fulfilled, lapsed, closed
    closed_at: Mapped[datetime | None] = mapped_column(Instant)


class DeMinimisAid(Base):
    """Aid counted against the single undertaking's de minimis ceiling: from the applicant's
    attestation, or granted by Usine itself (written at the vote)."""

    __tablename__ = "de_minimis_aids"
    id: Mapped[int] = mapped_column(primary_key=True)
    siren: Mapped[str] = mapped_column(String(9), index=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    source: Mapped[str] = mapped_column(String(12))  # attestation, usine
    granted_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    regulation: Mapped[str | None] = mapped_column(String(20))


class PaymentClaim(Base):
    __tablename__ = "payment_claims"
    __table_args__ = (Index("ix_payment_claims_dossier_status", "dossier_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    phase: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))  # advance, final
    amount_claimed: Mapped[Decimal] = mapped_column(Money)
    invoices: Mapped[list[Any]]
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10))  # pending, paid
    claimed_at: Mapped[datetime] = mapped_column(Instant)
    paid_at: Mapped[datetime | None] = mapped_column(Instant)


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("payment_claims.id"), unique=True)
    phase: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_at: Mapped[datetime] = mapped_column(Instant)


class RecoveryOrder(Base):
    """Titre de recettes: the balance came out below zero."""

    __tablename__ = "recovery_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("payment_claims.id"), unique=True)
    phase: Mapped[int]
    amount: Mapped[Decimal] = mapped_column(Money)
    issued_at: Mapped[datetime] = mapped_column(Instant)


class Repayment(Base):
    """A repayment of a loan received by finance: what it settled, oldest instalment first,
    interest before principal (SPEC §11.3)."""

    __tablename__ = "repayments"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    received_on: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    early: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(Instant)


class Notification(Base):
    """The outbox: written in the command's transaction, delivered later; `dedupe_key` makes a
    second sweep, or a re-run after a crash, unable to queue the same message twice."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient_role: Mapped[str] = mapped_column(String(20))
    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    template_hash: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(10))  # queued, sent, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Instant)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Instant)
    sent_at: Mapped[datetime | None] = mapped_column(Instant)


class Event(Base):
    """An immutable, hash-chained record of one change of one dossier."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("dossier_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    dossier_reference: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(Instant, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    command: Mapped[str] = mapped_column(String(40), index=True)
    state_before: Mapped[str] = mapped_column(String(32))
    state_after: Mapped[str] = mapped_column(String(32))
    programme: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict[str, Any]]
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(Instant)
    # Operational metadata, outside the hashed payload (`services.events.event_hash`): the id of
    # the API request, CLI invocation or flow run that wrote the event, to find its log lines.
    # Not part of what the chain certifies: verifying never reads it, editing it breaks nothing.
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)


# The trigram operator class of the search index (`Dossier.search_text`): a contrib extension,
# "trusted" since PostgreSQL 13 (the database's owner may create it).
event.listen(Dossier.__table__, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))


# SQLite's search index (docs/performance.md, Search): an FTS5 table with the `trigram` tokenizer
# (SQLite ≥ 3.34) over `dossiers.search_text`, external-content (it stores only the index; its
# rowid is the dossier's id), kept exact by triggers on `dossiers` — whatever writes the column
# (`services.deadlines.refresh`, the migrations' backfill, a bench's INSERT … SELECT, a delete).
# PostgreSQL answers the same search from its GIN trigram index: nothing of this there.
# Migration 0220 creates the same objects (its own frozen copy of these statements;
# tests/test_search_fts.py compares the two).
SEARCH_FTS_TABLE = "dossiers_fts"
SEARCH_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS dossiers_fts USING fts5("
    "search_text, content='dossiers', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS dossiers_fts_insert AFTER INSERT ON dossiers BEGIN "
    "INSERT INTO dossiers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS dossiers_fts_delete AFTER DELETE ON dossiers BEGIN "
    "INSERT INTO dossiers_fts(dossiers_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS dossiers_fts_update AFTER UPDATE OF id, search_text ON dossiers "
    "WHEN old.id IS NOT new.id OR old.search_text IS NOT new.search_text BEGIN "
    "INSERT INTO dossiers_fts(dossiers_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO dossiers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)
for _statement in SEARCH_FTS_DDL:
    event.listen(Dossier.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
event.listen(Dossier.__table__, "before_drop", DDL("DROP TABLE IF EXISTS dossiers_fts").execute_if(dialect="sqlite"))


def is_search_fts_table(name: str | None) -> bool:
    """The FTS table and its shadow tables (`dossiers_fts_data`, `_idx`, `_docsize`, `_config`):
    SQLite's own objects, which the models do not declare (a schema comparison leaves them out)."""
    return bool(name) and (name == SEARCH_FTS_TABLE or str(name).startswith(SEARCH_FTS_TABLE + "_"))


def include_in_schema_comparison(name: str | None, type_: str, parent_names) -> bool:
    """`include_name` of Alembic's comparison (autogenerate, the schema tests): all but the FTS tables."""
    return not (type_ == "table" and is_search_fts_table(name))
