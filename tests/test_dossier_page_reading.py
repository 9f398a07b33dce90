"""What a reader sees at the top of a dossier of a multi-line programme and wherever a SIREN is
printed: the header's elements apart from one another, the SIREN grouped « 853 100 006 » on pages as
in the letters, the raw digits kept in the links (Nouvelle-Aquitaine's pathway scenario)."""
from __future__ import annotations

import json
import re
from datetime import datetime
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import SECRET, use_fast_passwords

from db import models as m
from services.clock import FrozenClock
from services.scenario import run_scenario
from services.users import create_user
from web.app import create_standalone_app

ROOT = Path(__file__).resolve().parents[1] / "scenarios" / "pathways"
NBSP = "\u00a0"
PASSWORD = "un mot de passe de test long"


def _officer(uow_factory, database_url, monkeypatch) -> TestClient:
    use_fast_passwords(monkeypatch)
    run_scenario(json.loads((ROOT / "golden-15-naq-pathway.json").read_text("utf-8")), database_url=database_url)
    clock = FrozenClock(datetime.fromisoformat("2025-10-06T10:00:00+02:00"))
    with uow_factory() as uow:
        create_user(uow=uow, clock=clock, username="agent.naq", password=PASSWORD, role="officer",
                    regions=["Nouvelle-Aquitaine"])
    client = TestClient(create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET),
                        follow_redirects=False)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text).group(1)
    assert client.post("/ui/login", data={"username": "agent.naq", "password": PASSWORD, "csrf_token": csrf,
                                          "next": ""}).status_code == 303
    return client


def _read(html: str) -> str:
    """The text as a browser puts it together: tags vanish without adding a space of their own."""
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).replace(NBSP, " ").split())


def _aid_dossier(uow_factory) -> int:
    with uow_factory() as uow:
        return uow.session.scalar(select(m.Dossier.id).where(m.Dossier.line == 2).order_by(m.Dossier.id))


def test_the_header_of_an_aid_dossier_keeps_its_line_apart_from_the_company_link(uow_factory, database_url,
                                                                                 monkeypatch):
    client = _officer(uow_factory, database_url, monkeypatch)
    page = client.get(f"/ui/dossiers/{_aid_dossier(uow_factory)}").text
    lead = re.search(r'<p class="lead">(.*?)</p>', page, re.S).group(1)
    text = _read(lead)
    assert "Ligne 2 — Dossier d'aide Parcours de l'entreprise" in text
    assert "aideParcours" not in text


def test_a_siren_reads_grouped_on_the_pages_and_stays_raw_in_the_links(uow_factory, database_url, monkeypatch):
    client = _officer(uow_factory, database_url, monkeypatch)
    did = _aid_dossier(uow_factory)
    dossier = client.get(f"/ui/dossiers/{did}").text
    queue = client.get("/ui/dossiers").text
    company = client.get("/ui/entreprises/853100006").text
    for page in (dossier, queue, company):
        assert "SIREN 853 100 006" in _read(page)
        assert "SIREN 853100006" not in _read(page)
    assert 'href="/ui/entreprises/853100006"' in dossier and 'href="/ui/entreprises/853100006"' in queue


def test_the_amounts_table_of_an_aid_dossier_fits_its_card_at_1280_pixels(uow_factory, database_url, monkeypatch,
                                                                          tmp_path, browser):
    client = _officer(uow_factory, database_url, monkeypatch)
    page_html = client.get(f"/ui/dossiers/{_aid_dossier(uow_factory)}").text
    assert 'id="money-by-instrument"' in page_html  # the table of a line with instruments
    css = client.get("/ui/static/usine.css").text
    page_html = page_html.replace('<link rel="stylesheet" href="/ui/static/usine.css">', f"<style>{css}</style>")
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # `browser`: the session's Chromium
    try:
        page.set_content(page_html, wait_until="domcontentloaded")
        fit = page.evaluate("""() => {
            const wrap = document.querySelector('#montants .table-wrap');
            const card = document.querySelector('#montants').getBoundingClientRect();
            const total = document.querySelector('#aid-total').getBoundingClientRect();
            return {scroll: wrap.scrollWidth, width: wrap.clientWidth,
                    inside: total.right <= card.right};
        }""")
        page.locator("#montants").screenshot(path=str(tmp_path / "montants.png"))
    finally:
        page.close()
    # « Total de l'aide » and its amount are read without scrolling sideways.
    assert fit["scroll"] <= fit["width"], fit
    assert fit["inside"], fit
