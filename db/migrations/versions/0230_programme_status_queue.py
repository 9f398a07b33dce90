"""The queue filtered by one state, in its order: `ix_dossiers_programme_status_queue`
(programme, state, next deadline, submission, id) replaces `ix_dossiers_programme_status`
(programme, state), of which it is an extension — what read the old one (a count by state, a
programme's dossiers in one state) reads the new one's first two columns.

Measured at 100 000 dossiers on PostgreSQL (docs/performance.md, 4 December evening): the queue
filtered by a state walked `ix_dossiers_programme_queue` in deadline order and dropped the
dossiers of other states one by one (13 750 rows read for a page of 50, a number that grows with
the region); with this index the page is one range of 51 entries.

Revision ID: 0230_programme_status_queue
Revises: 0220_sqlite_search_fts
"""
from alembic import op

revision = "0230_programme_status_queue"
down_revision = "0220_sqlite_search_fts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dossiers_programme_status_queue", "dossiers",
                    ["programme_id", "status", "next_deadline_at", "submitted_at", "id"])
    op.drop_index("ix_dossiers_programme_status", table_name="dossiers")


def downgrade() -> None:
    op.create_index("ix_dossiers_programme_status", "dossiers", ["programme_id", "status"])
    op.drop_index("ix_dossiers_programme_status_queue", table_name="dossiers")
