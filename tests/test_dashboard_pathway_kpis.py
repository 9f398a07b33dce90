"""The dashboard's pathway figures (SPEC §11.4), counted from the dossiers and their events,
beside the figures the region published: Nouvelle-Aquitaine's diagnostic, plan and aid dossiers,
Pays de la Loire's subsidy and loan voted, paid, outstanding."""
from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient
from web_support import SECRET, use_fast_passwords

from services.clock import FrozenClock
from services.kpis import programme_kpis, side_by_side
from services.scenario import run_scenario
from services.sweep import sweep
from services.users import create_user
from web.app import create_standalone_app

ROOT = Path(__file__).resolve().parents[1] / "scenarios" / "pathways"


def _play(database_url: str, name: str, until: str | None = None) -> None:
    doc = json.loads((ROOT / f"{name}.json").read_text("utf-8"))
    if until is not None:
        doc["steps"] = doc["steps"][:max(i for i, s in enumerate(doc["steps"]) if s["do"] == until) + 1]
        doc["expect"] = {}
    run_scenario(doc, database_url=database_url)


def test_the_nouvelle_aquitaine_pathway_is_counted_from_its_events_beside_the_published_figures(uow_factory,
                                                                                                database_url):
    _play(database_url, "golden-15-naq-pathway")  # one diagnostic, its plan voted, two aid dossiers voted
    with uow_factory() as uow:
        programme = uow.catalogue.latest("naq-udf4-exemple")
        kpis = programme_kpis(uow.session, programme)
    assert (kpis.sites_diagnosed, kpis.companies_diagnosed, kpis.companies_with_plan) == (1, 1, 1)
    assert kpis.share_with_plan == Decimal("1.0000")
    assert (kpis.aid_dossiers_voted, kpis.companies_engaged, kpis.dossiers_per_engaged) == (2, 1, Decimal("2.00"))
    # Voted: 6 080 € (diagnostic) + 40 000 € + 6 000 €; paid: the diagnostic and the first aid dossier.
    assert kpis.subsidy_voted == Decimal("52080.00") and kpis.subsidy_paid == Decimal("46080.00")
    assert kpis.loans_voted == kpis.loans_outstanding == Decimal("0")
    rows = {r["key"]: r for r in side_by_side(kpis, programme.reported)}
    assert (rows["sites_diagnosed"]["computed"], rows["sites_diagnosed"]["published"]) == (1, 1171)
    assert rows["aid_dossiers_voted"]["published"] == 1903 and rows["companies_engaged"]["published"] == 684
    assert rows["share_with_plan"]["published"] == Decimal("0.70")
    assert rows["dossiers_per_engaged"]["published"] == Decimal("2.78")  # 1 903 / 684
    assert rows["loans_voted"]["published"] is None


def test_a_pays_de_la_loire_loan_is_counted_voted_disbursed_outstanding_then_in_default(uow_factory, database_url,
                                                                                         clock):
    _play(database_url, "golden-12-pdl-deployment-loan", until="disburse_loan")
    with uow_factory() as uow:
        programme = uow.catalogue.latest("pdl-ami-idf-exemple")
        kpis = programme_kpis(uow.session, programme)
    assert (kpis.subsidy_voted, kpis.loans_voted, kpis.loans_disbursed) == (
        Decimal("100000.00"), Decimal("400000.00"), Decimal("400000.00"))
    assert kpis.loans_outstanding == Decimal("400000.00") and kpis.loans_in_default == 0
    assert kpis.companies_with_plan is None and kpis.share_with_plan is None  # no plan in Pays de la Loire
    assert kpis.aid_dossiers_voted == 1 and kpis.sites_diagnosed == 0  # a line-3 dossier, no line-1 one
    clock.set(datetime.fromisoformat("2020-12-15T06:00:00+01:00"))  # 15/10/2020 unpaid for 61 days
    sweep(uow_factory=uow_factory, clock=clock)
    with uow_factory() as uow:
        kpis = programme_kpis(uow.session, uow.catalogue.latest("pdl-ami-idf-exemple"))
    assert (kpis.loans_in_default, kpis.outstanding_in_default) == (1, Decimal("400000.00"))
    assert all(r["published"] is None for r in side_by_side(kpis, None))


def test_the_dashboard_page_shows_the_computed_figures_beside_the_published_ones(uow_factory, database_url,
                                                                                  monkeypatch):
    use_fast_passwords(monkeypatch)
    _play(database_url, "golden-15-naq-pathway")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    with uow_factory() as uow:
        create_user(uow=uow, clock=clock, username="agent.naq", password="un mot de passe de test long",
                    role="officer", regions=["Nouvelle-Aquitaine"])
    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET),
                        follow_redirects=False)
    login = client.get("/ui/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert client.post("/ui/login", data={"username": "agent.naq", "password": "un mot de passe de test long",
                                          "csrf_token": csrf, "next": ""}).status_code == 303
    page = client.get("/ui/tableau-de-bord").text
    rows = {key: " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
            for key, html in re.findall(r'<tr data-kpi="([a-z_]+)">(.*?)</tr>', page, re.S)}
    rows = {key: text.replace("\u202f", " ").replace("\xa0", " ") for key, text in rows.items()}
    assert rows["sites_diagnosed"] == "Sites diagnostiqués 1 1 171"
    assert rows["aid_dossiers_voted"] == "Dossiers d'aide votés 2 1 903"
    assert rows["share_with_plan"].endswith("100 % 70 %")
    assert "52 080,00 €" in rows["subsidy_voted"] and "loans_voted" not in rows  # this programme lends nothing
    assert "Programme d'exemple — chiffres non officiels" in unescape(page)


def test_a_label_of_the_dashboard_says_the_same_number_on_its_card_and_in_the_table(uow_factory, database_url,
                                                                                      monkeypatch):
    use_fast_passwords(monkeypatch)
    # Nouvelle-Aquitaine's pathway: three voted dossiers (the diagnostic and two aid dossiers), of which
    # two are aid dossiers — the card once counted every voted dossier under the table's words.
    _play(database_url, "golden-15-naq-pathway")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    with uow_factory() as uow:
        create_user(uow=uow, clock=clock, username="agent.naq", password="un mot de passe de test long",
                    role="officer", regions=["Nouvelle-Aquitaine"])
    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET),
                        follow_redirects=False)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text).group(1)
    client.post("/ui/login", data={"username": "agent.naq", "password": "un mot de passe de test long",
                                   "csrf_token": csrf, "next": ""})
    page = client.get("/ui/tableau-de-bord").text

    def shown(pattern: str) -> dict[str, str]:
        return {key: " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).replace("\u202f", " ")
                              .replace("\xa0", " ").split()) for key, html in re.findall(pattern, page, re.S)}

    cards = shown(r'<li data-kpi-card="([a-z_]+)">(.*?)</li>')
    table = shown(r'<tr data-kpi="([a-z_]+)">(.*?)</tr>')
    assert cards["aid_dossiers_voted"] == "2 dossiers d'aide votés" and table["aid_dossiers_voted"].startswith(
        "Dossiers d'aide votés 2 ")
    assert cards["companies_engaged"] == "1 entreprise engagée (2,00 dossiers d'aide par entreprise engagée)"
    assert table["companies_engaged"].startswith("Entreprises engagées 1 ")
    assert table["dossiers_per_engaged"].startswith("Dossiers d'aide par entreprise engagée 2,00 ")
    assert cards["sites_diagnosed"] == "1 site diagnostiqué" and table["sites_diagnosed"].startswith(
        "Sites diagnostiqués 1 ")
    assert cards["share_with_plan"] == "100 % des entreprises diagnostiquées avec un plan accepté"
    # Every voted dossier, aid or not, is a step of the chart under a label of its own.
    assert "Dossiers votés (toutes lignes)" in page and "3 dossiers votés" not in page
