"""The dashboard reads its figures as last counted (`services.dashboard`), not by counting every
dossier at each view (and so do the queue's counts by state): the page says when they were counted, keeps them until the next count (the
`refresh-dashboard` flow every 15 minutes, `usine dashboard`), and counts a programme itself
only the first time, when nothing is stored yet."""
from __future__ import annotations

import json
import re
from datetime import datetime
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from web_support import SECRET, use_fast_passwords

from db import models as m
from db.models_dashboard import DashboardFigures
from services.clock import FrozenClock
from services.dashboard import ProgrammeFigures, count_figures, figures_of, refresh
from services.scenario import run_scenario
from services.users import create_user
from web.app import create_standalone_app

ROOT = Path(__file__).resolve().parents[1] / "scenarios" / "pathways"
PASSWORD = "un mot de passe de test long"
NAQ = "naq-udf4-exemple"


def _play(database_url: str, name: str, until: str | None = None) -> None:
    doc = json.loads((ROOT / f"{name}.json").read_text("utf-8"))
    if until is not None:
        doc["steps"] = doc["steps"][:max(i for i, s in enumerate(doc["steps"]) if s["do"] == until) + 1]
        doc["expect"] = {}
    run_scenario(doc, database_url=database_url)


def _officer(uow_factory, clock) -> TestClient:
    with uow_factory() as uow:
        create_user(uow=uow, clock=clock, username="agent.naq", password=PASSWORD, role="officer",
                    regions=["Nouvelle-Aquitaine"])
    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET),
                        follow_redirects=False)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text).group(1)
    assert client.post("/ui/login", data={"username": "agent.naq", "password": PASSWORD, "csrf_token": csrf,
                                          "next": ""}).status_code == 303
    return client


def _shown(page: str) -> tuple[str, dict[str, str]]:
    lead = " ".join(unescape(re.sub(r"<[^>]+>", " ", re.search(r'<p class="lead">(.*?)</p>', page, re.S)
                                    .group(1))).split())
    rows = {key: " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).replace("\u202f", " ").replace("\xa0", " ").split())
            for key, html in re.findall(r'<tr data-kpi="([a-z_]+)">(.*?)</tr>', page, re.S)}
    return lead, rows


def test_the_dashboard_shows_the_figures_as_last_counted_with_their_time_until_they_are_counted_again(
        uow_factory, database_url, monkeypatch):
    use_fast_passwords(monkeypatch)
    _play(database_url, "golden-15-naq-pathway", until="accept_diagnostic")  # one site diagnosed, nothing voted
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    officer = _officer(uow_factory, clock)
    lead, rows = _shown(officer.get("/ui/tableau-de-bord").text)
    # Nothing was stored yet: the first view counts, stores and says when.
    assert "le 06/10/2025 10:00" in lead and "recomptés toutes les 15 minutes" in lead
    assert rows["sites_diagnosed"].startswith("Sites diagnostiqués 1 ")
    assert rows["aid_dossiers_voted"].startswith("Dossiers d'aide votés 0 ")

    # Seven minutes later the page keeps the figures of 10:00 and says so; nothing is recounted.
    with uow_factory() as uow:
        stored_before = uow.session.scalar(select(DashboardFigures.figures))
    clock.advance(minutes=7)
    lead, rows = _shown(officer.get("/ui/tableau-de-bord").text)
    assert "le 06/10/2025 10:00" in lead
    with uow_factory() as uow:
        assert uow.session.scalar(select(DashboardFigures.figures)) == stored_before

    clock.advance(minutes=8)
    report = refresh(uow_factory=uow_factory, clock=clock)
    assert NAQ in report.programmes
    lead, rows = _shown(officer.get("/ui/tableau-de-bord").text)
    assert "le 06/10/2025 10:15" in lead


def test_a_command_after_the_count_shows_on_the_dashboard_only_once_counted_again(uow_factory, database_url,
                                                                                 monkeypatch):
    use_fast_passwords(monkeypatch)
    _play(database_url, "golden-15-naq-pathway", until="accept_diagnostic")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    refresh(uow_factory=uow_factory, clock=clock)
    # The whole pathway played on the same database afterwards: a second company's life, voted.
    _play(database_url, "golden-15-naq-pathway")
    officer = _officer(uow_factory, clock)
    _, rows = _shown(officer.get("/ui/tableau-de-bord").text)
    assert rows["aid_dossiers_voted"].startswith("Dossiers d'aide votés 0 ")  # as counted at 10:00
    clock.advance(minutes=15)
    refresh(uow_factory=uow_factory, clock=clock)
    lead, rows = _shown(officer.get("/ui/tableau-de-bord").text)
    assert rows["aid_dossiers_voted"].startswith("Dossiers d'aide votés 2 ")
    assert rows["sites_diagnosed"].startswith("Sites diagnostiqués 2 ")
    assert "le 06/10/2025 10:15" in lead


def test_a_view_of_stored_figures_reads_one_row_per_programme_and_counts_no_dossier(uow_factory, database_url):
    _play(database_url, "golden-15-naq-pathway")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    refresh(uow_factory=uow_factory, clock=clock)
    statements: list[str] = []
    with uow_factory() as uow:
        programmes = [uow.catalogue.latest(NAQ)]
        engine = uow.session.get_bind()
        listen = lambda conn, cursor, sql, *a: statements.append(sql)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            shown = figures_of(uow, programmes, clock)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    statements = [s for s in statements if not s.startswith("BEGIN")]
    assert len(statements) == 1 and "dashboard_figures" in statements[0] and "dossiers" not in statements[0], statements
    assert shown[0].kpis.aid_dossiers_voted == 2


def test_stored_figures_read_back_equal_to_what_was_counted_to_the_cent(uow_factory, database_url):
    _play(database_url, "golden-12-pdl-deployment-loan", until="disburse_loan")  # a subsidy and a loan
    _play(database_url, "golden-15-naq-pathway")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    refresh(uow_factory=uow_factory, clock=clock)
    with uow_factory() as uow:
        for programme_id in ("pdl-ami-idf-exemple", NAQ):
            programme = uow.catalogue.latest(programme_id)
            counted = count_figures(uow.session, programme, clock.now())
            row = uow.session.get(DashboardFigures, programme_id)
            assert ProgrammeFigures.from_json(programme_id, row.computed_at, row.figures) == counted
        assert uow.session.scalar(select(func.count()).select_from(DashboardFigures)) == len(uow.catalogue.all())
    with uow_factory() as uow:
        pdl = ProgrammeFigures.from_json("pdl-ami-idf-exemple", clock.now(),
                                         uow.session.get(DashboardFigures, "pdl-ami-idf-exemple").figures)
    assert str(pdl.kpis.loans_outstanding) == "400000.00" and str(pdl.kpis.subsidy_voted) == "100000.00"


def _chips(page: str) -> tuple[dict[str, int], str]:
    chips = {state: int(n) for state, n in re.findall(r'href="\?state=([a-z_]+)"[^>]*>[^<]*<strong>(\d+)</strong>', page)}
    when = re.search(r'<p class="muted" id="counts-when">(.*?)</p>', page, re.S)
    return chips, " ".join(unescape(when.group(1)).split()) if when else ""


def test_the_queue_s_counts_by_state_are_the_dashboard_s_last_count_and_say_when_the_list_staying_live(
        uow_factory, database_url, monkeypatch):
    use_fast_passwords(monkeypatch)
    _play(database_url, "golden-15-naq-pathway", until="accept_diagnostic")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    refresh(uow_factory=uow_factory, clock=clock)
    officer = _officer(uow_factory, clock)
    chips, when = _chips(officer.get("/ui/dossiers").text)
    with uow_factory() as uow:
        live = dict(uow.session.execute(select(DashboardFigures.programme_id, DashboardFigures.figures)).all())
    assert chips == live[NAQ]["by_state"] and sum(chips.values()) >= 1
    assert when == "Comptés le 06/10/2025 10:00 (recomptés toutes les 15 minutes) ; la liste ci-dessous est à jour."

    _play(database_url, "golden-15-naq-pathway")  # a second company's whole pathway, after the count
    page = officer.get("/ui/dossiers?closed=1").text
    assert _chips(page)[0] == chips  # the chips wait for the next count…
    with uow_factory() as uow:
        total_now = uow.session.scalar(select(func.count()).select_from(m.Dossier))
    assert total_now > sum(chips.values())  # …while the dossiers are already more
    clock.advance(minutes=15)
    refresh(uow_factory=uow_factory, clock=clock)
    chips, when = _chips(officer.get("/ui/dossiers").text)
    assert sum(chips.values()) == total_now and "le 06/10/2025 10:15" in when


def test_the_queue_s_first_page_groups_no_dossier_to_count_its_states(uow_factory, database_url, monkeypatch):
    use_fast_passwords(monkeypatch)
    _play(database_url, "golden-15-naq-pathway")
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    refresh(uow_factory=uow_factory, clock=clock)
    officer = _officer(uow_factory, clock)
    statements: list[str] = []
    with uow_factory() as uow:
        engine = uow.session.get_bind()
    listen = lambda conn, cursor, sql, *a: statements.append(sql)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        assert officer.get("/ui/dossiers").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    grouped = [s for s in statements if "GROUP BY dossiers.status" in s]
    assert grouped == [], grouped
    assert any("dashboard_figures" in s for s in statements)
