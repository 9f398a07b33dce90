"""Fifteen more lives under the example programmes of SPEC §11 (Pays de la Loire calls, lines and
loans; Nouvelle-Aquitaine pathways), written by a reader who did not read the product code, each
figure computed by hand in the file's `comment` and its steps' `note`s: Paris midnight at a call's
boundaries in both time zones, call dates that never move, line-2 caps and the combined cap again
at the final claim, month-end due dates, partial and early repayments, reminders and default to the
day, the head's write-off, the NAQ ETI rate, the freed action, the advance to the cent, the PdL
payment deadline and a loan counted at its GGE at the de minimis ceiling."""
import json
from decimal import Decimal

import pytest

from services.scenario import run_file
from tests.helpers import SCENARIOS

FOLDER = SCENARIOS / "audited-pathways"
FILES = sorted(FOLDER.glob("pathway-*.json"))

# Files the product fails where SPEC §11 is clear; the lead fixes the product, then removes the mark
# (strict: the test fails as soon as the product is right, so the mark cannot outlive the bug).
# Files the product failed when they were written, until it was mended (pathway-13: a NAQ
# consulting aid dossier of 31 days was accepted; SPEC §11.4 says ≤ 30 days — now refused).
PRODUCT_WRONG: dict[str, str] = {}


def _params():
    for path in FILES:
        marks = [pytest.mark.xfail(strict=True, reason=PRODUCT_WRONG[path.stem])] if path.stem in PRODUCT_WRONG else []
        yield pytest.param(path, id=path.stem, marks=marks)


def test_the_audited_pathway_scenarios_are_there_each_with_its_hand_arithmetic():
    assert len(FILES) == 15
    for path in FILES:
        doc = json.loads(path.read_text("utf-8"))
        assert doc["name"] == path.stem
        assert doc["programme"] in {"pdl-ami-idf-exemple", "naq-udf4-exemple"}
        assert len(doc["comment"]) > 100, f"{path.stem}: the hand arithmetic is missing"


@pytest.mark.parametrize("path", list(_params()))
def test_audited_pathway_scenario_passes(path, database_url):
    result = run_file(path, database_url=database_url)
    assert result["expectations"]["failures"] == []
    assert result["expectations"]["passed"] > 0
    assert result["final"]["history_verified"] is True


def test_line_2_asked_above_every_cap_lists_each_cut_under_adjustments(database_url):
    result = run_file(FOLDER / "pathway-04-line2-both-instrument-caps-and-combined-cap.json",
                      database_url=database_url)
    cuts = result["final"]["adjustments"]
    loan_cut = sum(Decimal(a["amount"]) for a in cuts if a["rule"] == "loan_cap")
    subsidy_cut = sum(Decimal(a["amount"]) for a in cuts if a["rule"] == "subsidy_cap")
    # loan 160,000 -> 125,000; subsidy 50,000 -> 30,000 (its own cap) -> 25,000 (combined 60 % cap)
    assert (loan_cut, subsidy_cut) == (Decimal("35000.00"), Decimal("25000.00"))
    assert all(a["base"] == "aid" and a["phase"] == 2 for a in cuts)


def test_a_loan_whose_gge_equals_the_headroom_to_the_cent_is_not_cut_by_de_minimis(database_url):
    result = run_file(FOLDER / "pathway-15-de-minimis-at-the-ceiling-loan-counted-at-its-gge.json",
                      database_url=database_url)
    exact = result["final"]["dossiers"]["LX"]
    assert exact["aid"]["loan"] == "100000.00"
    assert [a for a in exact["adjustments"] if a["rule"] == "de_minimis"] == []
