"""audit anchors

Revision ID: 0004_audit
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0004_audit"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("anchored_at", db.types.Instant(), nullable=False),
        sa.Column("dossiers", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("delta_digest", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_table(
        "audit_anchor_heads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("anchor_seq", sa.Integer(), nullable=False),
        sa.Column("dossier_reference", sa.String(length=32), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("anchor_seq", "dossier_reference"),
    )
    op.create_index("ix_audit_anchor_heads_reference", "audit_anchor_heads", ["dossier_reference", "anchor_seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_anchor_heads_reference", table_name="audit_anchor_heads")
    op.drop_table("audit_anchor_heads")
    op.drop_table("audit_anchors")
