"""the dashboard's figures as last computed, one row per programme (issue 16)

Revision ID: 0210_dashboard_figures
Revises: 0200_one_line
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0210_dashboard_figures"
down_revision = "0200_one_line"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_figures",
        sa.Column("programme_id", sa.String(length=64), nullable=False),
        sa.Column("computed_at", db.types.Instant(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("programme_id"),
    )


def downgrade() -> None:
    op.drop_table("dashboard_figures")
