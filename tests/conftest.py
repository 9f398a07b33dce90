"""Shared fixtures. The whole suite runs on SQLite by default and on PostgreSQL when
USINE_TEST_POSTGRES_URL is set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)."""
from __future__ import annotations

import os
from datetime import datetime

import pytest
from sqlalchemy import text

from db.engine import create_schema, make_engine
from db.models import Base
from services.clock import FrozenClock
from services.commands import Actor
from services.storage import InMemoryStorage
from services.uow import unit_of_work_factory
from tests import dossier_write_guard

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

POSTGRES_URL = os.environ.get("USINE_TEST_POSTGRES_URL")

dossier_write_guard.install()


@pytest.fixture(autouse=True)
def one_writer_of_dossier_states():
    """Every test fails when a dossier's state or an amount was written by any statement but the
    one writer's (`services.dossier_writes`; the listener: `tests/dossier_write_guard.py`)."""
    dossier_write_guard.take()
    yield
    rogue = dossier_write_guard.rogue(dossier_write_guard.take())
    if rogue:
        pytest.fail("état ou montant d'un dossier écrit hors de services.dossier_writes : "
                    + "; ".join(f"{sorted(u.columns)} par {u.sql[:200]!r}" for u in rogue), pytrace=False)


def pytest_report_header(config):
    return f"usine database backend: {'postgresql ' + POSTGRES_URL if POSTGRES_URL else 'sqlite'}"


def pytest_terminal_summary(terminalreporter):
    """Figures a test recorded (`record_property("usine_figures", text)`), shown without -s and
    under xdist too (the properties travel with the reports)."""
    shown = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", None) or []:
                if key == "usine_figures" and getattr(report, "when", "call") == "call" and value not in shown:
                    shown.append(value)
    if shown:
        terminalreporter.section("Usine figures")
        for value in shown:
            terminalreporter.write_line(value)


@pytest.fixture(scope="session")
def postgres_engine():
    if not POSTGRES_URL:
        yield None
        return
    # One database per xdist worker so that parallel workers never see each other's rows.
    # (and per process, so that two test runs on one machine never share one either)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    admin = make_engine(POSTGRES_URL)
    name = f"usine_test_{worker}_{os.getpid()}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    create_schema(engine)
    yield engine
    engine.dispose()
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path, postgres_engine):
    """A fresh, empty database for one test."""
    if postgres_engine is None:
        url = f"sqlite:///{tmp_path / 'usine.db'}"
        engine = make_engine(url)
        create_schema(engine)
        engine.dispose()
        return url
    tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    with postgres_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return postgres_engine.url.render_as_string(hide_password=False)


@pytest.fixture
def uow_factory(database_url):
    factory = unit_of_work_factory(database_url, storage=InMemoryStorage())
    yield factory
    factory.engine.dispose()


@pytest.fixture
def clock():
    return FrozenClock(datetime.fromisoformat("2021-02-01T10:00:00+01:00"))


@pytest.fixture
def actors():
    return {
        "applicant": Actor("Mme Durand (Atelier Garonne)", "applicant"),
        "officer": Actor("M. Martin, chargé de mission", "officer"),
        "head": Actor("Mme Roux, cheffe de service", "head"),
        "finance": Actor("Service financier", "finance"),
        "consultant": Actor("Cabinet Midi Conseil", "consultant"),
        "auditor": Actor("Contrôle régional", "auditor"),
    }


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (tests/browser_support.py); each test opens its own contexts.
    Launched only when a browser test asks for it. Not per session: Playwright's sync API keeps an
    event loop running in the thread while it is open, and every later test of the worker that
    runs asyncio (`asyncio.run`, Prefect's sync-compatible calls) would find it and fail."""
    from browser_support import chromium

    with chromium() as launched:
        yield launched
