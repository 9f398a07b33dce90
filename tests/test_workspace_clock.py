"""A demo workspace's clock is shared by all its processes and never goes back."""
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "from services.runtime import default_clock; print(default_clock().now().isoformat())"


def _now(tmp_path, **env):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, check=True,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "USINE_VAR_DIR": str(tmp_path / "var"), **env})
    return datetime.fromisoformat(out.stdout.strip())


def test_a_restarted_process_of_a_demo_workspace_does_not_turn_the_clock_back(tmp_path):
    start = "2022-06-15T09:00:00+02:00"
    first = _now(tmp_path, USINE_CLOCK_START=start)
    second = _now(tmp_path, USINE_CLOCK_START=start)
    without_variable = _now(tmp_path)  # the CLI of the same workspace, run without the variable
    assert datetime.fromisoformat(start) <= first <= second <= without_variable
    assert without_variable.year == 2022


def test_a_workspace_without_a_demo_clock_uses_real_time(tmp_path):
    assert _now(tmp_path).year >= 2026


def test_a_demo_workspace_records_its_programme_versions_on_its_own_clock(tmp_path):
    """`make run` migrates with the demo clock: versions are not recorded years after the dossiers
    submitted under them."""
    import sqlite3

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "USINE_VAR_DIR": str(tmp_path / "var"),
           "USINE_DATABASE_URL": f"sqlite:///{tmp_path / 'usine.db'}", "USINE_CLOCK_START": "2022-06-15T09:00:00+02:00",
           "DO_NOT_TRACK": "1"}
    subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=300)
    with sqlite3.connect(tmp_path / "usine.db") as db:
        years = {row[0][:4] for row in db.execute("SELECT loaded_at FROM programme_versions")}
    assert years == {"2022"}
