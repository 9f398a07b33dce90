"""council calendar: who planned a council session ahead (issue 19)

Revision ID: 0090_council_calendar
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

revision = "0090_council_calendar"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("council_sessions") as batch:
        batch.add_column(sa.Column("planned_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("council_sessions") as batch:
        batch.drop_column("planned_by")
