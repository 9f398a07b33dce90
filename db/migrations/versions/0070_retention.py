"""RGPD retention: dossiers' anonymisation instant, pieces' deletion instant

Revision ID: 0070_retention
Revises: 0001_initial
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = "0070_retention"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("anonymised_at", db.types.Instant(), nullable=True))
        batch.create_index("ix_dossiers_anonymised_at", ["anonymised_at"])
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("content_deleted_at", db.types.Instant(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("content_deleted_at")
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_index("ix_dossiers_anonymised_at")
        batch.drop_column("anonymised_at")
