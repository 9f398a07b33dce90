"""The users and idempotency-key tables come with their Alembic migration (`usine db upgrade`),
and the migration matches the models."""
from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from db.engine import make_engine
from db.migrate import upgrade
from db.models import Base, include_in_schema_comparison

POSTGRES_URL = os.environ.get("USINE_TEST_POSTGRES_URL")
MINE = {"users", "idempotency_keys"}


@pytest.fixture
def empty_database_url(tmp_path):
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"usine_api_migration_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _touches_mine(difference) -> bool:
    """Whether one autogenerate difference concerns a table of this module."""
    for item in difference if isinstance(difference, list) else [difference]:
        for x in item[1:]:
            if x in MINE or getattr(x, "name", None) in MINE or getattr(getattr(x, "table", None), "name", None) in MINE:
                return True
    return False


def test_upgrading_an_empty_database_creates_the_users_and_idempotency_tables_as_the_models_declare(empty_database_url):
    import db.all_models  # noqa: F401

    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        inspector = inspect(engine)
        assert MINE <= set(inspector.get_table_names())
        assert {c["name"] for c in inspector.get_columns("users")} == set(Base.metadata.tables["users"].columns.keys())
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("idempotency_keys")}
        assert ("key", "username", "route") in uniques
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_in_schema_comparison}),
                                Base.metadata)
        assert [d for d in diff if _touches_mine(d)] == []
    finally:
        engine.dispose()
