"""Engines for SQLite (the embedded default) and PostgreSQL."""
from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from db.models import Base


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        in_memory = database in (None, "", ":memory:")
        if not in_memory:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if in_memory:
            kwargs["poolclass"] = StaticPool
        # hide_parameters: see below.
        engine = create_engine(url, echo=echo, hide_parameters=True, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # Take transaction control from pysqlite so that BEGIN IMMEDIATE below is honoured.
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            if not in_memory:
                # WAL: readers never block the writer. synchronous=FULL: a commit survives a
                # power cut (the WAL is fsynced at every commit) — "durable commits".
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            # Writers queue on the database lock at BEGIN instead of failing half-way with
            # SQLITE_BUSY when a read transaction tries to upgrade to a write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # hide_parameters: an error message (and so a log line) never shows a statement's values —
    # a document's bytes, a password hash, a person's details (docs/operations.md, Logs).
    engine = create_engine(url, echo=echo, hide_parameters=True, pool_size=10, max_overflow=20)
    _ping_when_idle(engine)
    return engine


# A connection back in use within this many seconds is taken as alive without asking the server.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, for the connections that sat idle: a connection handed back moments ago is
    alive, and pinging it cost each command a round trip to the server. The pool replaces one
    whose ping fails (DisconnectionError: it connects again, up to three times). A connection
    the server dropped within the last seconds (a restart) fails the statement instead: the API
    answers 503 and SQLAlchemy renews the whole pool on that disconnect."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _known_alive(_dbapi_connection, record, *_):
        if record is not None:
            record.info["usine.checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection, record, _proxy):
        handed_back = record.info.get("usine.checked_in_at")
        if handed_back is not None and time.monotonic() - handed_back < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def create_schema(engine: Engine) -> None:
    import db.all_models  # noqa: F401  (every table, whichever module declares it)

    """For throw-away databases (scenario runs, tests); real ones use `usine db upgrade`."""
    Base.metadata.create_all(engine)
