"""work sharing: officers' teams per region, the queue's assignment index (issue 19, part 4)

Revision ID: 0110_assignment
Revises: 0090_council_calendar, 0080_scale_indexes

Also a child of 0080: the queue's new index covers `next_deadline_at`, which 0080 adds (0090 and
0080 are siblings off 0001/0060). A second parent, not `depends_on`: a dependency would stay a
head the database never records, and readiness would answer 503 (see 0080's history).
"""
import sqlalchemy as sa
from alembic import op

from db.types import Instant

revision = "0110_assignment"
down_revision = ("0090_council_calendar", "0080_scale_indexes")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(length=40), nullable=False, unique=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("created_at", Instant(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.UniqueConstraint("region", "name", name="uq_teams_region_name"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("username", sa.String(length=80), primary_key=True),
        sa.Column("added_at", Instant(), nullable=False),
        sa.Column("added_by", sa.String(length=80), nullable=False),
    )
    op.create_index("ix_team_members_username", "team_members", ["username"])
    op.create_index("ix_dossiers_officer_queue", "dossiers", ["officer", "next_deadline_at", "submitted_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_dossiers_officer_queue", table_name="dossiers")
    op.drop_index("ix_team_members_username", table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
