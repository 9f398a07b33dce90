"""events.request_id: the API request, CLI invocation or flow run that wrote an event

Operational metadata outside the hashed payload (services.events.event_hash): the existing
chains verify unchanged, and older events keep NULL.

Revision ID: 0050_event_metadata
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

revision = "0050_event_metadata"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without default: ALTER TABLE … ADD COLUMN on both databases, no rewrite.
    op.add_column("events", sa.Column("request_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("request_id")
