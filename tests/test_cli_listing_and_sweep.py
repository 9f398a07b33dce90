"""The command line says what it does not show, and refuses to write the future:
`usine dossier list` names the cut (« 50 premiers dossiers sur N — --limit pour plus ») and takes
--limit / --offset; `usine sweep --at` an instant after the workspace clock's now is refused
(events dated after « maintenant ») unless --force."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import listing_note

ROOT = Path(__file__).resolve().parents[1]
DEMO_CLOCK = "2022-06-15T09:00:00+02:00"


def _usine(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
           "USINE_DATABASE_URL": f"sqlite:///{workspace / 'var' / 'usine.db'}",
           "USINE_STORAGE_DIR": str(workspace / "var" / "docs"), "USINE_VAR_DIR": str(workspace / "var"),
           "USINE_CLOCK_START": DEMO_CLOCK}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=workspace,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A demo workspace as `make run` leaves it (60 dossiers), living on 15 June 2022."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "var").mkdir()
    assert _usine(root, "db", "upgrade").returncode == 0
    demo = _usine(root, "demo", "--dossiers", "60")
    assert demo.returncode == 0, demo.stderr
    (root / "demo.txt").write_text(demo.stdout, "utf-8")
    return root


def test_the_demo_tells_in_french_what_it_played_what_waits_and_how_to_sign_in(workspace):
    said = (workspace / "demo.txt").read_text("utf-8")
    assert said.startswith("Démo chargée au 15/06/2022 09:00 : ")
    assert "Parcours régional Industrie du Futur (Occitanie) : " in said
    assert "instruction de recevabilité : " in said and "Séances avec des dossiers à voter :" in said
    assert "agent.occitanie — Claire Martin, chargée de mission (Occitanie)\n" in said
    assert "entreprise.garonne — Mme Durand (Atelier Garonne SAS) — entreprise" in said
    # The teams' colleagues sign in too: their accounts are said, under the same password.
    assert "Comptes des collègues des équipes (même mot de passe) :\n" in said
    assert "  agent2.occitanie — Julien Fabre, chargé de mission (Occitanie)\n" in said
    # No internal ids or English keys: states, programmes and report fields are named in French.
    for internal in ("eligibility_review", "occitanie-prif", "by_programme", "sweep", '{"', "None"):
        assert internal not in said, internal


def test_listing_note():
    assert listing_note(50, 0, 240) == "50 premiers dossiers sur 240 — --limit pour plus"
    assert listing_note(50, 50, 240) == "dossiers 51 à 100 sur 240 — --limit / --offset pour les autres"
    assert listing_note(40, 200, 240) is None and listing_note(12, 0, 12) is None


def test_dossier_list_says_where_it_stops(workspace):
    default = _usine(workspace, "dossier", "list")
    assert default.returncode == 0
    assert len(default.stdout.splitlines()) == 50
    assert default.stderr.strip() == "50 premiers dossiers sur 80 — --limit pour plus"
    everything = _usine(workspace, "dossier", "list", "--limit", "100")
    assert len(everything.stdout.splitlines()) == 80 and everything.stderr == ""
    page = _usine(workspace, "dossier", "list", "--limit", "5", "--offset", "10")
    assert [int(line.split()[0]) for line in page.stdout.splitlines()] == list(range(11, 16))
    assert "dossiers 11 à 15 sur 80" in page.stderr
    ready = _usine(workspace, "dossier", "list", "--state", "ready_for_vote", "--limit", "1")
    assert ready.returncode == 0 and "ready_for_vote" in ready.stdout
    assert _usine(workspace, "dossier", "list", "--limit", "0").returncode == 2
    none = _usine(workspace, "dossier", "list", "--state", "closed", "--offset", "500")
    assert none.returncode == 0 and "Aucun dossier après les 500 premiers" in none.stdout


def _events(workspace: Path) -> int:
    with sqlite3.connect(workspace / "var" / "usine.db") as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_a_sweep_in_the_future_of_the_workspace_is_refused_unless_forced(workspace):
    before = _events(workspace)
    future = _usine(workspace, "sweep", "--at", "2022-07-20T06:00:00+02:00")
    assert future.returncode == 2, future.stdout
    assert "est après l'heure de l'espace de travail" in future.stderr and "--force" in future.stderr
    assert future.stdout == "" and _events(workspace) == before
    past = _usine(workspace, "sweep", "--at", "2022-06-14T06:00:00+02:00")
    assert past.returncode == 0, past.stderr
    assert json.loads(past.stdout)["as_of"] == "2022-06-14"
    now = _usine(workspace, "sweep")
    assert now.returncode == 0, now.stderr
    forced = _usine(workspace, "sweep", "--at", "2022-07-20T06:00:00+02:00", "--force")
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["as_of"] == "2022-07-20" and report["lapsed"] + report["reminders"] > 0
    assert _events(workspace) > before
    assert "--force" in _usine(workspace, "sweep", "--help").stdout
