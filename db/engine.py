"""Engines for SQLite (the embedded default) and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
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
        engine = create_engine(url, echo=echo, **kwargs)

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
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def create_schema(engine: Engine) -> None:
    import db.all_models  # noqa: F401  (every table, whichever module declares it)

    """For throw-away databases (scenario runs, tests); real ones use `usine db upgrade`."""
    Base.metadata.create_all(engine)
