"""`make run` without a mail server: `usine serve` starts its local SMTP sink (nothing listens
on USINE_SMTP_PORT, loopback), and the scheduled delivery flow sends the demo letters into it —
one .eml file per message under ./var/mailbox/. Ctrl-C stops the sink with the rest. Real Prefect
server, real flows (the delivery schedule set to every minute); about a minute and a half."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from notifications.sink import Mailbox, port_in_use
from tests.helpers import stop_with_ctrl_c
from tests.smtp_sink import free_port

pytestmark = pytest.mark.prefect
ROOT = Path(__file__).resolve().parents[1]


def _outbox(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM notifications GROUP BY status").fetchall())


def test_usine_serve_delivers_the_demo_letters_into_its_local_mailbox(tmp_path):
    smtp_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "USINE_"))}
    env.update({
        "PYTHONPATH": str(ROOT),
        "USINE_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'usine.db'}",
        "USINE_CLOCK_START": "2022-06-15T09:00:00+02:00",
        "USINE_SMTP_PORT": str(smtp_port),                # loopback, nothing listens: the sink starts
        "USINE_CRON_DELIVER": "* * * * *",
        "USINE_CRON_SWEEP": "0 6 1 1 *", "USINE_CRON_DIGEST": "0 6 1 1 *", "USINE_CRON_AUDIT_ANCHOR": "0 6 1 1 *",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_RUNNER_POLL_FREQUENCY": "5",
    })
    usine = [sys.executable, "-m", "cli.main"]
    for args in (["db", "upgrade"], ["demo", "--dossiers", "12"]):
        done = subprocess.run(usine + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    db = tmp_path / "var" / "usine.db"
    queued = _outbox(db)["queued"]
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    serve = subprocess.Popen(usine + ["serve", "--no-api", "--prefect-port", str(free_port())], cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    box = Mailbox(tmp_path / "var" / "mailbox")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and serve.poll() is None and len(box) < queued:
            time.sleep(3)
        output = log_path.read_text()
        assert serve.poll() is None, output
        assert len(box) == queued, f"{len(box)} of {queued} letters in the mailbox\n{output}"
        assert "boîte locale démarrée" in output
    finally:
        code = stop_with_ctrl_c(serve, log)  # Ctrl-C
    output = log_path.read_text()
    assert code == 0, output
    assert "[usine serve] serveur SMTP local arrêté (code 0)." in output
    assert not port_in_use("127.0.0.1", smtp_port)
    assert _outbox(db) == {"sent": queued}
    assert [m.number for m in box.list(limit=None)] == list(range(queued, 0, -1))
