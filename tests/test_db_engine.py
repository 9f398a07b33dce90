"""The PostgreSQL engine's pool on a real server: a connection that sat idle is pinged and
replaced when the server dropped it; one handed back moments ago is used without a ping, and
when the server dropped it anyway the statement fails once and the pool renews itself."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import db.engine
from db.engine import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="the pool of the PostgreSQL engine (PostgreSQL suite)")


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    admin = make_engine(POSTGRES_URL)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    admin.dispose()


@pytest.fixture
def engine():
    engine = make_engine(POSTGRES_URL)  # used one statement at a time: one pooled connection
    yield engine
    engine.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(engine, monkeypatch):
    first = _backend_pid(engine)
    _terminate(first)
    monkeypatch.setattr(db.engine, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection counts as idle
    assert _backend_pid(engine) != first  # no error reached the caller


def test_a_connection_used_moments_ago_is_not_pinged(engine):
    pings = []
    original = engine.dialect.do_ping
    engine.dialect.do_ping = lambda dbapi_connection: pings.append(1) or original(dbapi_connection)
    _backend_pid(engine)
    for _ in range(5):
        _backend_pid(engine)
    assert pings == []


def test_a_recent_connection_the_server_dropped_fails_once_then_the_pool_renews(engine):
    first = _backend_pid(engine)
    _terminate(first)
    with pytest.raises(OperationalError) as caught:  # the API answers it 503, Retry-After: 1
        _backend_pid(engine)
    assert caught.value.connection_invalidated
    assert _backend_pid(engine) != first
