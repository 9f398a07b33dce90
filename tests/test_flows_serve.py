"""`usine serve`, for real: a local Prefect server from the installed package (database under
./var/prefect), the deployments served on their cron schedules, the API — one command. A test
schedule runs the sweep every minute; the test waits for a scheduled run to complete on the
server, then stops everything with Ctrl-C (SIGINT). Takes about a minute."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers import stop_with_ctrl_c
from tests.smtp_sink import free_port

pytestmark = pytest.mark.prefect


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def completed_scheduled_sweeps(api: str) -> list[dict]:
    response = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
        "flows": {"name": {"any_": ["sweep-deadlines"]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    })
    response.raise_for_status()
    return [run for run in response.json() if run["auto_scheduled"]]


def test_usine_serve_fires_the_scheduled_sweep_on_its_local_prefect_server_and_stops_cleanly(tmp_path):
    prefect_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "USINE_"))}
    env.update({
        "USINE_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'usine.db'}",
        "USINE_CRON_SWEEP": "* * * * *",                 # the test schedule: every minute
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_RUNNER_POLL_FREQUENCY": "5",
        "USINE_SMTP_PORT": str(free_port()),              # nothing listens: deliveries just wait
    })
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--prefect-port", str(prefect_port),
                              "--api-port", str(api_port)], cwd=tmp_path, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{prefect_port}/api"
    try:
        deadline = time.monotonic() + 240
        runs: list[dict] = []
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                runs = completed_scheduled_sweeps(api)
            except httpx.HTTPError:
                runs = []
            if runs:
                break
            time.sleep(3)
        output = (tmp_path / "serve.log").read_text()
        assert serve.poll() is None, output
        assert runs, f"no scheduled sweep completed in time\n{output}"
        assert (tmp_path / "var" / "prefect").is_dir()  # the server's home and database, under ./var/
        assert any((tmp_path / "var" / "prefect").glob("*.db"))
        assert "Balayage au" in (tmp_path / "serve.log").read_text()
    finally:
        code = stop_with_ctrl_c(serve, log)  # Ctrl-C
    output = (tmp_path / "serve.log").read_text()
    assert code == 0, output
    assert "SIGINT reçu : arrêt." in output
    assert "[usine serve] serveur Prefect arrêté (code 0)." in output
    assert not port_open(prefect_port) and not port_open(api_port)
