"""The Prefect test harness, once per test session, for the flow tests only: loaded by
`pytest_plugins = ["tests.conftest_prefect"]` in the modules that run real flows.

A temporary PREFECT_HOME, analytics off, flow heartbeats off, and a generous start-up time for
the harness's API server (a loaded machine can take a while to start it)."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_HOME,
        PREFECT_LOGGING_LEVEL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with temporary_settings({PREFECT_HOME: str(home), PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                             PREFECT_SERVER_ANALYTICS_ENABLED: False, PREFECT_LOGGING_LEVEL: "WARNING",
                             PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 240}):
        # A loaded 2-core CI host took over 90 s to start the ephemeral server once.
        with prefect_test_harness(server_startup_timeout=240):
            yield
