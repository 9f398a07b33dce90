"""messages, private annotations and expert opinions of a dossier (issue 19)

Revision ID: 0100_messages
Revises: 0090_council_calendar
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0100_messages"
down_revision = "0090_council_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dossier_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dossier_id", sa.Integer(), sa.ForeignKey("dossiers.id"), nullable=False),
        sa.Column("thread", sa.String(length=12), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("author_role", sa.String(length=20), nullable=False),
        sa.Column("author_side", sa.String(length=12), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("sent_at", db.types.Instant(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("read_at", db.types.Instant(), nullable=True),
        sa.Column("read_by", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_dossier_messages_unread", "dossier_messages", ["dossier_id", "read_at", "author_side"])
    op.create_table(
        "message_attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("dossier_messages.id"), nullable=False),
        sa.Column("dossier_id", sa.Integer(), sa.ForeignKey("dossiers.id"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("content_deleted_at", db.types.Instant(), nullable=True),
    )
    op.create_index("ix_message_attachments_message_id", "message_attachments", ["message_id"])
    op.create_index("ix_message_attachments_dossier_id", "message_attachments", ["dossier_id"])
    op.create_table(
        "dossier_annotations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dossier_id", sa.Integer(), sa.ForeignKey("dossiers.id"), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("author_role", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("written_at", db.types.Instant(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
    )
    op.create_index("ix_dossier_annotations_dossier_id", "dossier_annotations", ["dossier_id"])
    op.create_table(
        "expert_invitations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dossier_id", sa.Integer(), sa.ForeignKey("dossiers.id"), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False, unique=True),
        sa.Column("expert_name", sa.String(length=200), nullable=False),
        sa.Column("expert_email", sa.String(length=254), nullable=False),
        sa.Column("expert_kind", sa.String(length=12), nullable=False),
        sa.Column("invited_by", sa.String(length=200), nullable=False),
        sa.Column("invited_at", db.types.Instant(), nullable=False),
        sa.Column("expires_at", db.types.Instant(), nullable=False),
        sa.Column("used_at", db.types.Instant(), nullable=True),
        sa.Column("opinion", sa.String(length=16), nullable=True),
        sa.Column("opinion_text", sa.Text(), nullable=True),
        sa.Column("opinion_sha256", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_expert_invitations_dossier_id", "expert_invitations", ["dossier_id"])


def downgrade() -> None:
    op.drop_table("expert_invitations")
    op.drop_table("dossier_annotations")
    op.drop_table("message_attachments")
    op.drop_table("dossier_messages")
