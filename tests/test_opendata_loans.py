"""Open data and loans (SPEC §10, §11.3): the SCDL « subventions » export publishes a Pays de la
Loire dossier's subsidy, never its loan — a loan is lent and repaid, not a subsidy."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from db import models as m
from rules.identifiers import luhn_valid
from services.opendata import check_row, export_subsidies
from services.scenario import run_scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios" / "pathways"
REGION_SIRET = next(f"200053742{n:05d}" for n in range(10, 99999) if luhn_valid(f"200053742{n:05d}"))


def _play(database_url: str, name: str, until: str | None = None) -> None:
    doc = json.loads((ROOT / f"{name}.json").read_text("utf-8"))
    if until is not None:
        doc["steps"] = doc["steps"][:next(i for i, s in enumerate(doc["steps"]) if s["do"] == until) + 1]
        doc["expect"] = {}
    run_scenario(doc, database_url=database_url)


def _rows(uow_factory) -> list[dict]:
    with uow_factory() as uow:
        export = export_subsidies(uow=uow, programme_id="pdl-ami-idf-exemple", attributor_siret=REGION_SIRET)
    for i, row in enumerate(export.rows):
        check_row(row, i)
    return export.rows


def test_a_line_3_dossier_publishes_its_subsidy_and_not_its_loan(uow_factory, database_url):
    _play(database_url, "golden-12-pdl-deployment-loan")  # 100 000 € subsidy + 400 000 € loan, closed
    (row,) = _rows(uow_factory)
    assert row["montant"] == "100000.00"
    # 100 000 € of subsidy on 1 200 000 € of eligible expense, to the hundredth.
    assert row["pourcentageSubvention"] == "0.08"
    assert row["dateConvention"] == "2020-06-16" and row["referenceDecision"] == "2020-06-112"
    assert "déploiement" in row["objet"].lower()


def test_a_dossier_in_repayment_still_publishes_its_voted_subsidy(uow_factory, database_url):
    _play(database_url, "golden-12-pdl-deployment-loan", until="disburse_loan")
    with uow_factory() as uow:
        assert uow.session.scalar(select(m.Dossier.status)) == "in_repayment"
    assert [r["montant"] for r in _rows(uow_factory)] == ["100000.00"]


def test_a_loan_without_subsidy_is_not_published_as_a_subsidy(uow_factory, database_url):
    doc = json.loads((ROOT / "golden-13-pdl-zero-rate-loan-default.json").read_text("utf-8"))
    doc["steps"] = doc["steps"][:6]  # up to the disbursement of the zero-rate loan
    doc["steps"][2]["with"]["instruments"] = {"loan": "100000.00"}
    for step in doc["steps"]:
        step.pop("expect", None)
    doc["expect"] = {}
    run_scenario(doc, database_url=database_url)
    with uow_factory() as uow:
        dossier = uow.session.scalar(select(m.Dossier))
        assert (dossier.status, dossier.voted["loan_total"], dossier.voted["subsidy_total"]) == \
            ("in_repayment", "100000.00", "0.00")
    assert _rows(uow_factory) == []
