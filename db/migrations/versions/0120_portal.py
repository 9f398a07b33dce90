"""applicant portal: the candidacy form's drafts, step by step (issue 19)

Revision ID: 0120_portal
Revises: 0090_council_calendar
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0120_portal"
down_revision = "0090_council_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidacy_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("call_code", sa.String(length=32), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=True),
        sa.Column("created_at", db.types.Instant(), nullable=False),
        sa.Column("updated_at", db.types.Instant(), nullable=False),
        sa.Column("submitted_at", db.types.Instant(), nullable=True),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossiers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dossier_id"),
    )
    op.create_index("ix_candidacy_drafts_user", "candidacy_drafts", ["username", "submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_candidacy_drafts_user", table_name="candidacy_drafts")
    op.drop_table("candidacy_drafts")
