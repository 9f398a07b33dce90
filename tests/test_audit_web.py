"""The auditor's replay page (/ui/audit/dossiers/{id}): the aid proposed or voted at the instant
shown, dates in French form, the comparison with the tables only when the instant is the
present, and an instant before the dossier existed said as such."""
from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from web_support import PASSWORD, SECRET, World, seed_users, use_fast_passwords

from db import models as m
from rules.calendar import PARIS
from web.app import create_standalone_app

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock, ("audit.occitanie", "entreprise.garonne", "agent.occitanie", "cabinet.midi",
                                      "cheffe.occitanie"))
    return w


@pytest.fixture
def auditor(world):
    client = TestClient(create_standalone_app(uow_factory=world.uow_factory, clock=world.clock, secret_key=SECRET),
                        follow_redirects=False)
    page = client.get("/ui/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/ui/login", data={"username": "audit.occitanie", "password": PASSWORD,
                                              "csrf_token": csrf, "next": ""})
    assert response.status_code == 303, response.text
    return client


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def replay_section(html: str) -> str:
    text = text_of(html)
    return text[text.index("Voir le dossier tel qu'il était"):text.index("Événements Choisissez")]


def events_of(world, dossier_id: int) -> list:
    with world.uow_factory() as uow:
        return uow.session.execute(select(m.Event.seq, m.Event.at, m.Event.command)
                                   .where(m.Event.dossier_id == dossier_id).order_by(m.Event.seq)).all()


def test_the_page_shows_the_proposed_aid_before_the_vote_and_the_voted_aid_after(world, auditor):
    did = world.dossier("approved")
    proposed_at = next(e.at for e in events_of(world, did) if e.command == "propose_for_vote")
    before = replay_section(auditor.get(f"/ui/audit/dossiers/{did}", params={"at": proposed_at.isoformat()}).text)
    assert "État : proposé au vote" in before
    assert "Aide proposée 17 500,00 € (phase 1 : 5 500,00 €, phase 2 : 12 000,00 €) — pas encore votée" in before
    assert "Aide votée" not in before
    after = replay_section(auditor.get(f"/ui/audit/dossiers/{did}").text)
    assert "Aide votée 17 500,00 € (phase 1 : 5 500,00 €, phase 2 : 12 000,00 €)" in after
    assert "Aide proposée" not in after and "pas encore votée" not in after


def test_the_page_prints_dates_in_french_even_in_the_differences_with_the_tables(world, auditor):
    did = world.dossier("approved")
    with world.uow_factory.engine.begin() as conn:
        conn.execute(update(m.Dossier.__table__).where(m.Dossier.__table__.c.id == did)
                     .values(payment_deadline_on=date(2023, 7, 31)))
    page = replay_section(auditor.get(f"/ui/audit/dossiers/{did}").text)
    assert "Date limite du solde 30/06/2023" in page
    assert "payment_deadline_on : rejoué 30/06/2023, enregistré 31/07/2023" in page
    assert not ISO_DATE.search(page), ISO_DATE.findall(page)


def test_the_page_compares_with_the_tables_only_at_the_present(world, auditor):
    did = world.dossier("approved")
    events = events_of(world, did)
    last, proposed = events[-1].at, next(e.at for e in events if e.command == "propose_for_vote")
    at_last = replay_section(auditor.get(f"/ui/audit/dossiers/{did}", params={"at": last.isoformat()}).text)
    assert "L'état rejoué est identique à l'état enregistré" in at_last
    past = replay_section(auditor.get(f"/ui/audit/dossiers/{did}", params={"at": proposed.isoformat()}).text)
    assert "État : proposé au vote" in past and "Comparaison avec l'état enregistré" not in past


def test_an_instant_before_the_first_event_says_the_dossier_did_not_exist_yet(world, auditor):
    did = world.dossier("submitted")
    first = events_of(world, did)[0].at.astimezone(PARIS)
    earlier = (first - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")  # the date picker's Paris wall time
    response = auditor.get(f"/ui/audit/dossiers/{did}", params={"at": earlier})
    assert response.status_code == 200
    page = replay_section(response.text)
    assert (f"n'existait pas encore le {first - timedelta(minutes=1):%d/%m/%Y %H:%M} (heure de Paris) : "
            f"son premier événement (n°1, submit_candidacy) date du {first:%d/%m/%Y %H:%M}") in page
    assert "État :" not in page and "Pièces à cet instant" not in page and "Recalcul" not in page
    assert "Comparaison" not in page
