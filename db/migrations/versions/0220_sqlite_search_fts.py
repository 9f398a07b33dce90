"""SQLite's search index: an FTS5 table with the trigram tokenizer over `dossiers.search_text`,
kept by triggers, built from the existing rows (issue 16). Nothing on PostgreSQL (its GIN
trigram index, migration 0080, answers the same search).

The statements are this migration's own copy of `db.models.SEARCH_FTS_DDL` (a migration does not
change when the models do); tests/test_search_fts.py checks that both build the same objects.

Revision ID: 0220_sqlite_search_fts
Revises: 0210_dashboard_figures
"""
from alembic import op

revision = "0220_sqlite_search_fts"
down_revision = "0210_dashboard_figures"
branch_labels = None
depends_on = None

DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS dossiers_fts USING fts5("
    "search_text, content='dossiers', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS dossiers_fts_insert AFTER INSERT ON dossiers BEGIN "
    "INSERT INTO dossiers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS dossiers_fts_delete AFTER DELETE ON dossiers BEGIN "
    "INSERT INTO dossiers_fts(dossiers_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS dossiers_fts_update AFTER UPDATE OF id, search_text ON dossiers "
    "WHEN old.id IS NOT new.id OR old.search_text IS NOT new.search_text BEGIN "
    "INSERT INTO dossiers_fts(dossiers_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO dossiers_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in DDL:
        op.execute(statement)
    # the backfill: the index of every existing row, read from `dossiers` (external content)
    op.execute("INSERT INTO dossiers_fts(dossiers_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("dossiers_fts_insert", "dossiers_fts_delete", "dossiers_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS dossiers_fts")
