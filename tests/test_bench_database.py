"""The load bench drops and re-creates the PostgreSQL database it is given: it refuses one that
holds anything but an earlier bench's data, so a mistyped URL cannot wipe real dossiers."""
import os

import pytest
from sqlalchemy import text

from bench.api_load import prepare_database
from db.engine import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="the bench's PostgreSQL database (PostgreSQL suite)")


@pytest.fixture
def bench_url():
    base = POSTGRES_URL.rsplit("/", 1)[0]
    name = f"usine_bench_guard_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = make_engine(f"{base}/postgres")

    def reset():
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    reset()
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    reset()
    admin.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        names = set(conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")))
    engine.dispose()
    return names


def test_the_bench_refuses_a_database_holding_another_applications_tables_and_leaves_it_intact(bench_url, tmp_path):
    _execute(bench_url, "CREATE TABLE clients (id int)", "INSERT INTO clients VALUES (1)")
    with pytest.raises(SystemExit, match="clients"):
        prepare_database(bench_url, tmp_path)
    assert _tables(bench_url) == {"clients"}


def test_the_bench_refuses_a_usine_database_with_real_accounts_and_reuses_one_of_its_own(bench_url, tmp_path):
    prepare_database(bench_url, tmp_path)  # an empty database: taken
    _execute(bench_url, "INSERT INTO users (username, password_hash, role, display_name, regions, active, created_at) "
                        "VALUES ('bench.agent0', 'x', 'officer', 'banc', '[]', true, now())")
    prepare_database(bench_url, tmp_path)  # an earlier bench's: dropped and made anew
    _execute(bench_url, "INSERT INTO users (username, password_hash, role, display_name, regions, active, created_at) "
                        "VALUES ('agent.occitanie', 'x', 'officer', 'vraie', '[]', true, now())")
    with pytest.raises(SystemExit, match="agent.occitanie"):
        prepare_database(bench_url, tmp_path)
    engine = make_engine(bench_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM users")) == 1  # nothing dropped
    engine.dispose()
