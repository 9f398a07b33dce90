"""the stored next deadline and search text of a dossier, the listings' indexes (issue 16)

Revision ID: 0080_scale_indexes
Revises: 0060_lines_and_loans

Backfills every dossier's `next_deadline_at`, `next_deadline_kind` and `search_text` with the
write path's own function (`services.deadlines.backfill`), as of today in Paris: batches of
5 000 dossiers, two statements each (docs/performance.md).
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0080_scale_indexes"
down_revision = "0060_lines_and_loans"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_dossiers_queue": ["next_deadline_at", "submitted_at", "id"],
    "ix_dossiers_programme_queue": ["programme_id", "next_deadline_at", "submitted_at", "id"],
    "ix_dossiers_updated": ["updated_at", "id"],
    "ix_dossiers_submitted": ["submitted_at", "id"],
    "ix_dossiers_officer": ["officer", "status"],
    "ix_dossiers_programme_consultant": ["programme_id", "consultant"],
}


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("next_deadline_at", sa.Date(), nullable=True))
        batch.add_column(sa.Column("next_deadline_kind", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    for name, columns in _INDEXES.items():
        op.create_index(name, "dossiers", columns)
    op.create_index("ix_events_command", "events", ["command"])
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_dossiers_search_trgm", "dossiers", ["search_text"], postgresql_using="gin",
                    postgresql_ops={"search_text": "gin_trgm_ops"})
    from rules.calendar import paris_date
    from services.deadlines import backfill

    backfill(bind, paris_date(datetime.now(timezone.utc)))


def downgrade() -> None:
    op.drop_index("ix_dossiers_search_trgm", table_name="dossiers")
    op.drop_index("ix_events_command", table_name="events")
    for name in reversed(list(_INDEXES)):
        op.drop_index(name, table_name="dossiers")
    with op.batch_alter_table("dossiers") as batch:
        for column in ("search_text", "next_deadline_kind", "next_deadline_at"):
            batch.drop_column(column)
