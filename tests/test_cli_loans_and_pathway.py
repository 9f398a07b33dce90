"""`usine loans schedule|disburse|repay` and `usine company`, run as a user runs them (a
subprocess on a workspace database): French tables and sentences, the example programme named
as such, a refusal that names its rule and writes nothing."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from services.scenario import run_scenario

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_12 = ROOT / "scenarios" / "pathways" / "golden-12-pdl-deployment-loan.json"
NOTICE = "« Programme d'exemple — chiffres non officiels »"


def _usine(workspace: Path, *args: str, at: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
           "USINE_DATABASE_URL": f"sqlite:///{workspace / 'var' / 'usine.db'}",
           "USINE_STORAGE_DIR": str(workspace / "var" / "docs"), "USINE_VAR_DIR": str(workspace / "var"),
           "USINE_CLOCK_START": at}
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=workspace,
                          env=env, timeout=120)
    # Amounts are printed with no-break spaces (« 2 030,00 € »); compared here with plain ones.
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.replace("\xa0", " "),
                                       done.stderr.replace("\xa0", " "))


def _query(workspace: Path, sql: str):
    with sqlite3.connect(workspace / "var" / "usine.db") as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def workspace(tmp_path) -> Path:
    """Golden 12's dossier voted (line 3: a 100 000 € subsidy and a 400 000 € loan at 2,03 %)."""
    (tmp_path / "var").mkdir()
    doc = json.loads(GOLDEN_12.read_text("utf-8"))
    doc["steps"] = [s for s in doc["steps"] if s["do"] != "disburse_loan"][:5]
    doc["expect"] = {}
    run_scenario(doc, database_url=f"sqlite:///{tmp_path / 'var' / 'usine.db'}")
    return tmp_path


def test_finance_disburses_then_reads_the_schedule_as_a_french_table(workspace):
    (reference,) = _query(workspace, "SELECT reference FROM dossiers")[0]
    before = _usine(workspace, "loans", "schedule", reference, at="2020-07-01T10:00:00+02:00")
    assert before.returncode == 1 and "pas encore versé" in before.stderr and "400 000,00 €" in before.stderr
    out = _usine(workspace, "loans", "disburse", reference, at="2020-07-15T10:00:00+02:00")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(NOTICE)
    assert "État du dossier : en remboursement" in out.stdout
    assert "Prochaine échéance : 15/10/2020 — capital 0,00 €, intérêts 2 030,00 €" in out.stdout
    again = _usine(workspace, "loans", "disburse", reference, at="2020-07-15T11:00:00+02:00")
    assert again.returncode == 1 and "Refusé (not_allowed, do)" in again.stderr and "en remboursement" in again.stderr

    table = _usine(workspace, "loans", "schedule", reference, at="2020-07-16T10:00:00+02:00")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == NOTICE
    assert "Prêt de 400 000,00 € au taux annuel de 2,03 %, versé le 15/07/2020" in table.stdout
    rows = [ln for ln in lines if ln[:3].strip().isdigit()]
    assert len(rows) == 24
    assert rows[0].split()[:2] == ["1", "15/10/2020"] and "2 030,00 €" in rows[0]
    assert rows[4].split()[1] == "15/10/2021" and "20 000,00 €" in rows[4] and "1 928,50 €" in rows[5]
    assert rows[-1].split()[1] == "15/07/2026" and rows[-1].endswith("0,00 €")


def test_a_repayment_above_what_is_due_is_refused_by_the_cli_and_nothing_is_written(workspace):
    (reference,) = _query(workspace, "SELECT reference FROM dossiers")[0]
    assert _usine(workspace, "loans", "disburse", reference, at="2020-07-15T10:00:00+02:00").returncode == 0
    events = _query(workspace, "SELECT count(*) FROM events")[0][0]
    refused = _usine(workspace, "loans", "repay", reference, "--amount", "5000.00", "--received-on", "2020-10-15",
                     at="2020-10-15T12:00:00+02:00")
    assert refused.returncode == 1 and "Refusé (overpayment, amount)" in refused.stderr
    assert _query(workspace, "SELECT count(*) FROM events")[0][0] == events
    assert _query(workspace, "SELECT count(*) FROM repayments")[0][0] == 0
    ok = _usine(workspace, "loans", "repay", reference, "--amount", "2030.00", "--received-on", "2020-10-15",
                at="2020-10-15T12:00:00+02:00")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(NOTICE)
    assert "Capital restant dû : 400 000,00 € (remboursé 0,00 €, intérêts payés 2 030,00 €)" in ok.stdout
    assert "Remboursement de 2 030,00 € reçu le 15/10/2020 enregistré." in ok.stdout


def test_usine_company_prints_the_pathway_in_french(workspace):
    (reference,) = _query(workspace, "SELECT reference FROM dossiers")[0]
    _usine(workspace, "loans", "disburse", reference, at="2020-07-15T10:00:00+02:00")
    out = _usine(workspace, "company", "441830007", at="2020-07-16T10:00:00+02:00")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(NOTICE)
    assert "Usinage Loire SAS (SIREN 441830007) — 1 dossier(s)" in out.stdout
    assert reference in out.stdout and "appel AMI-2020-2" in out.stdout
    assert "en remboursement ; subvention 100 000,00 €, prêt 400 000,00 €" in out.stdout
    assert "Prêts restant dus : 400 000,00 €" in out.stdout and "De minimis au 16/07/2020" in out.stdout
    unknown = _usine(workspace, "company", "732829320", at="2020-07-16T10:00:00+02:00")
    assert unknown.returncode == 1 and "aucune entreprise 732829320" in unknown.stderr
