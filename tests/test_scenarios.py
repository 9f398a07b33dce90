"""Every golden scenario (the repository's copy under scenarios/golden) passes through the real
services, and the runner's contract (output shape, exit codes, invalid files) holds."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.scenario import ScenarioFileError, run_file, run_scenario
from tests.helpers import SCENARIOS

SHARED = SCENARIOS / "golden"
GOLDEN = sorted(SHARED.glob("*.json"))


def test_the_golden_scenarios_are_there():
    assert len(GOLDEN) >= 14, f"golden scenarios not found under {SHARED}"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_scenario_passes(path, database_url):
    result = run_file(path, database_url=database_url)
    assert result["expectations"]["failures"] == []
    assert result["expectations"]["passed"] > 0
    if result["final"]["state"] is not None:
        assert result["final"]["history_verified"] is True


# Twenty more lives, written from SPEC.md alone by a reviewer who did not read the code, with
# hand-computed figures: de minimis under both regulations around 1 January 2024, the advance cap
# to the cent, recovery orders, Paris midnight at the cut-off and at the window, holidays moving
# reminders, withdrawals, wrong roles, an adjourned vote.
AUDITED = sorted((SCENARIOS / "audited").glob("audit-*.json"))


def test_the_audited_scenarios_are_there():
    assert len(AUDITED) == 20


@pytest.mark.parametrize("path", AUDITED, ids=lambda p: p.stem)
def test_audited_scenario_passes(path, database_url):
    result = run_file(path, database_url=database_url)
    assert result["expectations"]["failures"] == []
    assert result["expectations"]["passed"] > 0
    if result["final"]["state"] is not None:  # no dossier when every candidacy was refused
        assert result["final"]["history_verified"] is True


def test_a_number_where_an_amount_is_expected_makes_the_file_invalid(tmp_path):
    doc = json.loads((SHARED / "golden-1-sme-full-life.json").read_text("utf-8"))
    doc["steps"][10]["expect"]["paid"] = 5500.0
    path = tmp_path / "float.json"
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(ScenarioFileError) as invalid:
        run_file(path)
    assert invalid.value.where == "steps[10].expect.paid"


def test_the_output_carries_per_step_figures_and_the_final_record():
    result = run_file(SHARED / "golden-1-sme-full-life.json")
    step = result["steps"][11]
    assert step == {"index": 11, "do": "claim_payment", "ok": False, "state": "in_payment",
                    "aid": {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"}, "paid": "5500.00",
                    "notifications": step["notifications"],
                    "refused": {"rule": "advance_cap", "message": step["refused"]["message"], "field": "amount"}}
    assert "8400.00" in step["refused"]["message"]
    final = result["final"]
    assert final["paid"] == "16300.00" and final["state"] == "closed"
    assert {"rule": "day_rate_cap", "phase": 2, "base": "expense", "amount": "2000.00"} in final["adjustments"]
    assert final["events"] == 15


def test_an_expense_cutoff_cut_is_listed_under_adjustments():
    result = run_file(SHARED / "golden-6-expense-cutoff.json")
    assert {"rule": "expense_cutoff", "phase": 2, "base": "expense", "amount": "12000.00"} in result["final"]["adjustments"]


def _doc(steps, expect=None):
    return {"name": "t", "programme": "occitanie-prif", "steps": steps, **({"expect": expect} if expect else {})}


SUBMIT = json.loads((SHARED / "golden-1-sme-full-life.json").read_text())["steps"][0]


def test_a_wrong_expectation_fails_the_scenario():
    result = run_scenario(_doc([SUBMIT], {"state": "approved"}))
    assert result["expectations"]["failed"] == 1
    assert result["expectations"]["failures"][0]["expected"] == "approved"


def test_an_unexpected_refusal_fails_the_scenario():
    step = dict(SUBMIT, at="2023-05-01T10:00:00+02:00")
    step.pop("expect")
    result = run_scenario(_doc([step]))
    assert result["steps"][0]["refused"]["rule"] == "window_closed"
    assert result["expectations"]["failed"] == 1


def test_a_bad_siren_in_a_step_is_a_refusal_naming_the_field():
    step = json.loads(json.dumps(SUBMIT))
    step["with"]["company"]["siren"] = "732829321"
    step["expect"] = {"refused": "siren_checksum"}
    result = run_scenario(_doc([step]))
    assert result["steps"][0]["refused"]["field"] == "company.siren"
    assert result["expectations"]["failed"] == 0


@pytest.mark.parametrize("doc, where", [
    ({"programme": "occitanie-prif", "steps": []}, "name"),
    (_doc([]), "steps"),
    ({"name": "t", "programme": "bretagne", "steps": [SUBMIT]}, "programme"),
    (_doc([dict(SUBMIT, do="fly")]), "steps[0].do"),
    (_doc([dict(SUBMIT, at="2021-02-01T10:00:00")]), "steps[0].at"),
    (_doc([dict(SUBMIT, **{"as": "mayor"})]), "steps[0].as"),
    (_doc([SUBMIT, dict(SUBMIT, at="2020-01-01T10:00:00+01:00")]), "steps[1].at"),
    (_doc([dict(SUBMIT, expect={"colour": "red"})]), "steps[0].expect.colour"),
])
def test_an_invalid_file_names_the_step_and_field(doc, where):
    with pytest.raises(ScenarioFileError) as bad:
        run_scenario(doc)
    assert bad.value.where == where


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])})


def test_the_cli_exit_codes_say_passed_failed_or_invalid(tmp_path):
    ok = _cli("scenario", "run", str(SHARED / "golden-4-size-rejected.json"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["final"]["state"] == "rejected"
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps(_doc([SUBMIT], {"state": "closed"})))
    assert _cli("scenario", "run", str(failing), cwd=tmp_path).returncode == 1
    invalid = tmp_path / "invalid.json"
    invalid.write_text("{not json")
    bad = _cli("scenario", "run", str(invalid), cwd=tmp_path)
    assert bad.returncode == 2 and "JSON invalide" in bad.stdout


def _golden_steps(name, upto):
    return json.loads((SHARED / name).read_text())["steps"][:upto]


def test_documents_provided_in_time_stop_the_chase():
    steps = _golden_steps("golden-9-document-chase-lapse.json", 2)
    steps += [
        {"at": "2021-03-01T10:00:00+01:00", "as": "officer", "do": "request_documents", "with": {"kinds": ["tax_certificate"]}},
        {"at": "2021-03-08T06:00:00+01:00", "do": "sweep", "expect": {"notifications": {"documents_reminder": 1}}},
        {"at": "2021-03-09T11:00:00+01:00", "as": "applicant", "do": "provide_documents", "with": {"kinds": ["tax_certificate"]}},
        {"at": "2021-03-15T06:00:00+01:00", "do": "sweep"},
        {"at": "2021-04-02T06:00:00+02:00", "do": "sweep"},
        {"at": "2021-04-02T09:00:00+02:00", "as": "officer", "do": "declare_eligible",
         "with": {"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": "1100.00"}}},
    ]
    result = run_scenario(_doc(steps, {"state": "diagnostic",
                                       "notifications": {"documents_reminder": 1, "documents_final_notice": 0,
                                                         "dossier_lapsed": 0}}))
    assert result["expectations"]["failures"] == []


def test_a_sweep_run_late_sends_only_the_step_due_not_every_missed_one():
    steps = _golden_steps("golden-9-document-chase-lapse.json", 2)
    steps += [
        {"at": "2021-03-01T10:00:00+01:00", "as": "officer", "do": "request_documents", "with": {"kinds": ["tax_certificate"]}},
        {"at": "2021-03-23T06:00:00+01:00", "do": "sweep"},
        {"at": "2021-03-23T07:00:00+01:00", "do": "sweep"},
    ]
    result = run_scenario(_doc(steps, {"notifications": {"documents_reminder": 0, "documents_final_notice": 1}}))
    assert result["expectations"]["failures"] == []


def test_after_the_payment_deadline_a_claim_is_refused_and_the_sweep_closes_the_dossier():
    steps = _golden_steps("golden-6-expense-cutoff.json", 11)  # voted, phase 1 paid
    steps += [
        {"at": "2023-07-03T09:00:00+02:00", "as": "applicant", "do": "claim_payment",
         "with": {"phase": 2, "kind": "final", "invoices": [{"date": "2022-06-30", "days": 10, "day_rate": "1200.00"}]},
         "expect": {"refused": "payment_deadline"}},
        {"at": "2023-07-03T10:00:00+02:00", "do": "sweep", "expect": {"state": "closed"}},
    ]
    result = run_scenario(_doc(steps, {"state": "closed", "paid": "5500.00", "notifications": {"dossier_closed": 1}}))
    assert result["expectations"]["failures"] == []


def test_a_vote_against_rejects_and_tells_the_company():
    steps = _golden_steps("golden-1-sme-full-life.json", 8)
    steps.append({"at": "2021-04-09T14:00:00+02:00", "as": "head", "do": "record_vote",
                  "with": {"session": "CP-2021-04", "outcome": "rejected", "deliberation": "CP/2021-04/18"}})
    result = run_scenario(_doc(steps, {"state": "rejected", "notifications": {"vote_result": 1}}))
    assert result["expectations"]["failures"] == []
    assert result["final"]["aid"] is None
