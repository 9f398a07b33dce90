"""`usine demo` plays its lives up to the workspace's clock: on `make run`'s clock (15 June 2025)
all three programmes are there — Occitanie's pathway over, Pays de la Loire loans being repaid,
Nouvelle-Aquitaine companies with their aid dossiers — and `--as-of` moves the demo instant back
(never after the clock: a demo does not write the future)."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE_RUN_CLOCK = next(line.split("?=")[1].strip() for line in (ROOT / "Makefile").read_text().splitlines()
                      if line.startswith("DEMO_CLOCK"))
FINAL = {"closed", "rejected", "withdrawn", "lapsed"}


def _usine(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
           "USINE_DATABASE_URL": f"sqlite:///{workspace / 'var' / 'usine.db'}",
           "USINE_STORAGE_DIR": str(workspace / "var" / "docs"), "USINE_VAR_DIR": str(workspace / "var"),
           "USINE_CLOCK_START": MAKE_RUN_CLOCK}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=workspace,
                          env=env, timeout=300)


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "var").mkdir()
    assert _usine(tmp_path, "db", "upgrade").returncode == 0
    return tmp_path


def _states_by_programme(workspace: Path) -> dict[str, set[str]]:
    with sqlite3.connect(workspace / "var" / "usine.db") as conn:
        rows = conn.execute("SELECT programme_id, status FROM dossiers").fetchall()
    found: dict[str, set[str]] = {}
    for programme, state in rows:
        found.setdefault(programme, set()).add(state)
    return found


def test_make_run_clock_is_a_day_when_the_three_programmes_are_in_the_demo():
    assert datetime.fromisoformat(MAKE_RUN_CLOCK).year == 2025


def test_the_default_demo_plays_the_three_programmes_up_to_the_workspace_clock(tmp_path):
    workspace = _workspace(tmp_path)
    done = _usine(workspace, "demo", "--dossiers", "24", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    as_of = datetime.fromisoformat(report["as_of"])
    assert 0 <= (as_of - datetime.fromisoformat(MAKE_RUN_CLOCK)).total_seconds() < 600
    assert set(report["by_programme"]) == {"occitanie-prif", "pdl-ami-idf-exemple", "naq-udf4-exemple"}
    with sqlite3.connect(workspace / "var" / "usine.db") as conn:
        held = dict(conn.execute("SELECT programme_id, count(*) FROM dossiers GROUP BY programme_id").fetchall())
    # The report counts every dossier played, those of lives the demo instant cut short included.
    assert report["by_programme"] == held and report["dossiers"] == sum(held.values())
    states = _states_by_programme(workspace)
    occitanie = {s for p, found in states.items() if p.startswith("occitanie") for s in found}
    pdl = {s for p, found in states.items() if p.startswith("pdl") for s in found}
    naq = {s for p, found in states.items() if p.startswith("naq") for s in found}
    assert occitanie <= FINAL  # the 2020–2022 pathway is over in 2025
    assert "in_repayment" in pdl
    assert naq - FINAL  # Nouvelle-Aquitaine dossiers are alive
    with sqlite3.connect(workspace / "var" / "usine.db") as conn:
        (latest,) = conn.execute("SELECT max(at) FROM events").fetchone()
    latest_at = datetime.fromisoformat(latest)
    assert (latest_at if latest_at.tzinfo else latest_at.replace(tzinfo=as_of.tzinfo)) <= as_of


def test_as_of_takes_the_demo_back_to_occitanies_pathway(tmp_path):
    workspace = _workspace(tmp_path)
    done = _usine(workspace, "demo", "--dossiers", "24", "--as-of", "2022-06-15T09:00:00+02:00", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["as_of"] == "2022-06-15T09:00:00+02:00"
    assert "naq-udf4-exemple" not in report["by_programme"]  # its candidacies open on 01/09/2024
    occitanie = {s for p, found in _states_by_programme(workspace).items() if p.startswith("occitanie") for s in found}
    assert occitanie - FINAL  # dossiers still under way


@pytest.mark.parametrize("as_of, says", [
    ("2031-01-01T09:00:00+01:00", "après l'horloge de l'espace de travail"),
    ("le 15 juin", "n'est pas un instant ISO 8601"),
])
def test_a_demo_instant_after_the_clock_or_unreadable_is_refused_and_nothing_is_written(tmp_path, as_of, says):
    workspace = _workspace(tmp_path)
    done = _usine(workspace, "demo", "--as-of", as_of)
    assert done.returncode == 2
    assert "--as-of" in done.stderr and says in done.stderr
    assert _states_by_programme(workspace) == {}
