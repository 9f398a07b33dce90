"""Open data (SPEC §10): the voted aids in the national SCDL « subventions » schema 2.1.1, from
the services, the command line and the API."""
from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import date

import pytest
from api_support import *  # noqa: F401,F403  (fixtures: app, client, sign_in, world)
from api_support import APPLICANT, AUDITOR, FINANCE, OFFICER, OFFICER_NAQ
from audit_scenarios import play

from rules.errors import RuleViolation
from rules.identifiers import luhn_valid
from services.opendata import COLUMNS, check_row, export_subsidies

# A SIRET that passes its keys (the programme files give none: the seed does not).
REGION_SIRET = next(f"732829320{n:05d}" for n in range(10, 99999) if luhn_valid(f"732829320{n:05d}"))


def _export(uow_factory, **kw):
    with uow_factory() as uow:
        return export_subsidies(uow=uow, programme_id="occitanie-prif", **kw)


def test_golden_case_1_is_published_as_its_vote_attributed_it(uow_factory):
    play(uow_factory, "golden-1-sme-full-life")
    export = _export(uow_factory, attributor_siret=REGION_SIRET)
    (row,) = export.rows
    assert row["nomAttribuant"] == "Région Occitanie"
    assert row["idAttribuant"] == REGION_SIRET
    assert row["dateConvention"] == "2021-04-09"          # the council's vote, the attributive act
    assert row["referenceDecision"] == "CP/2021-04/17"
    assert row["nomBeneficiaire"] == "Atelier Garonne SAS"
    assert row["montant"] == "17500.00"                   # what was voted, not what was paid
    assert row["nature"] == "aide en numéraire"
    assert row["conditionsVersement"] == "échelonné"      # two phases, an advance, a balance
    # Closed: from the first payment to the last one (Paris days).
    assert row["datesPeriodeVersement"] == "2021-04-22_2021-11-19"
    assert row["notificationUE"] == "non"
    # 17,500 € of aid on 29,500 € of eligible spending (5,500 + 24,000), to the hundredth.
    assert row["pourcentageSubvention"] == "0.59"
    assert row["dispositifAide"] == "Parcours régional Industrie du Futur"
    assert len(row["objet"]) <= 256 and row["objet"]


def test_the_csv_has_the_schema_columns_in_order_and_every_row_passes_its_constraints(uow_factory):
    play(uow_factory, "golden-1-sme-full-life")
    play(uow_factory, "golden-2-pathway-cap")
    text = _export(uow_factory, attributor_siret=REGION_SIRET).csv()
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == COLUMNS
    rows = list(reader)
    assert [r["montant"] for r in rows] == ["17500.00", "22800.00"]
    for i, r in enumerate(rows):
        check_row(r, i)
    # Approved and not yet paid: from the vote to the balance deadline.
    assert rows[1]["datesPeriodeVersement"].endswith("_2023-06-30")


def test_dossiers_not_voted_are_not_published(uow_factory):
    play(uow_factory, "golden-4-size-rejected")        # rejected
    play(uow_factory, "golden-10-window-closed")       # never submitted
    assert _export(uow_factory, attributor_siret=REGION_SIRET).rows == []


def test_the_vote_period_filters_the_rows(uow_factory):
    play(uow_factory, "golden-1-sme-full-life")  # voted on 9 April 2021
    assert len(_export(uow_factory, attributor_siret=REGION_SIRET, voted_from=date(2021, 4, 9)).rows) == 1
    assert _export(uow_factory, attributor_siret=REGION_SIRET, voted_from=date(2021, 4, 10)).rows == []
    assert _export(uow_factory, attributor_siret=REGION_SIRET, voted_to=date(2021, 4, 8)).rows == []
    with pytest.raises(RuleViolation) as refused:
        _export(uow_factory, attributor_siret=REGION_SIRET, voted_from=date(2021, 5, 1), voted_to=date(2021, 4, 1))
    assert refused.value.field == "from"


def test_without_the_regions_siret_the_export_is_refused_rather_than_invented(uow_factory):
    play(uow_factory, "golden-1-sme-full-life")
    with pytest.raises(RuleViolation) as refused:
        _export(uow_factory)
    assert (refused.value.rule, refused.value.field) == ("programme_figure_unknown", "attributing_siret")


def test_a_siret_failing_its_key_is_refused_naming_the_field(uow_factory):
    with pytest.raises(RuleViolation) as refused:
        _export(uow_factory, attributor_siret="73282932000018" if REGION_SIRET != "73282932000018" else "73282932000019")
    assert (refused.value.rule, refused.value.field) == ("siret_checksum", "attributor_siret")


def test_an_unknown_programme_is_refused(uow_factory):
    with pytest.raises(RuleViolation) as refused:
        with uow_factory() as uow:
            export_subsidies(uow=uow, programme_id="bretagne-xyz", attributor_siret=REGION_SIRET)
    assert (refused.value.rule, refused.value.field) == ("unknown_programme", "programme")


# -- the API ------------------------------------------------------------------------------------

def test_regional_staff_download_the_csv_and_others_cannot(world, sign_in):
    path = f"/opendata/subventions?programme=occitanie-prif&attributor_siret={REGION_SIRET}"
    for user in (OFFICER, AUDITOR, FINANCE):
        r = sign_in(user).get(path)
        assert r.status_code == 200, (user, r.text)
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["referenceDecision"] for row in rows] == ["CP/2021-04/17"]  # `paying`, the one voted
    assert sign_in(OFFICER_NAQ).get(path).status_code == 404   # another region's programme
    assert sign_in(APPLICANT).get(path).status_code == 403
    as_json = sign_in(OFFICER).get(path + "&format=json").json()
    assert as_json["version"] == "2.1.1" and as_json["columns"] == list(COLUMNS)


def test_the_api_names_the_missing_siret(world, sign_in):
    r = sign_in(OFFICER).get("/opendata/subventions?programme=occitanie-prif")
    assert r.status_code == 422
    assert (r.json()["rule"], r.json()["field"]) == ("programme_figure_unknown", "attributing_siret")


# -- the command line -----------------------------------------------------------------------------

def test_the_command_line_writes_the_file_or_says_why_not(uow_factory, database_url, tmp_path):
    play(uow_factory, "golden-1-sme-full-life")
    env = {"USINE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1"}
    base = [sys.executable, "-m", "cli.main", "opendata", "subventions", "--programme", "occitanie-prif"]
    refused = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 1 and "attributing_siret" in refused.stderr
    out = tmp_path / "subventions.csv"
    done = subprocess.run(base + ["--attributor-siret", REGION_SIRET, "-o", str(out)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 aide(s) votée(s)" in done.stderr
    assert out.read_text("utf-8").splitlines()[0] == ",".join(COLUMNS)
    bad_day = subprocess.run(base + ["--from", "09/04/2021"], capture_output=True, text=True, env=env, timeout=120)
    assert bad_day.returncode == 2 and "--from" in bad_day.stderr
