"""The queue and the API listing page by cursor, search folded text, and offer the programme's
consultants, on SQLite and PostgreSQL alike (docs/performance.md)."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import GARONNE, PASSWORD, SECRET, World, actor, seed_users, use_fast_passwords

from db import models as m
from services import commands
from web import queue as web_queue
from web.app import create_standalone_app
from web.dossier_view import known_consultants


def world_actor(world):
    return actor(world.uow_factory, "agent.occitanie")


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    return w


@pytest.fixture
def app(world):
    return create_standalone_app(uow_factory=world.uow_factory, clock=world.clock, secret_key=SECRET)


def client_for(app, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/ui/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                              "next": ""})
    assert response.status_code == 303, response.text
    return client


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<td><a href="/ui/dossiers/(\d+)">', html)]


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _company(name: str, seed: int) -> dict:
    return {**GARONNE, "name": name}  # the demo applicant files for its own SIREN only


@pytest.fixture
def eight(world):
    """Eight dossiers: three with a document request (a deadline), five without."""
    ids = [world.dossier("eligibility_review", company=_company(f"Atelier {i}", i)) for i in range(8)]
    for did in ids[:3]:
        world.run(commands.request_documents, "agent.occitanie", dossier_id=did, kinds=["rib"])
    return ids


def test_the_queue_walks_its_pages_by_cursor_forward_and_back_in_deadline_order(app, world, eight, monkeypatch):
    monkeypatch.setattr(web_queue, "PAGE_SIZE", 3)
    client = client_for(app, "agent.occitanie")
    first = client.get("/ui/dossiers").text
    pages, html = [_ids(first)], first
    while _link(html, "next"):
        html = client.get("/ui/dossiers" + _link(html, "next")).text
        pages.append(_ids(html))
    walked = [d for p in pages for d in p]
    assert [len(p) for p in pages] == [3, 3, 2]
    # the three with a deadline first (requested in that order: same lapse day, oldest submission first)
    assert walked == eight[:3] + eight[3:]
    assert "Page 3 sur 3" in html
    back = []
    while _link(html, "prev"):
        html = client.get("/ui/dossiers" + _link(html, "prev")).text
        back.insert(0, _ids(html))
    assert back == pages[:-1]
    assert "Page 1 sur 3" in html and "instruction de recevabilité" in html  # the counts, on the first page


def test_a_queue_beyond_the_count_cap_says_more_than_and_still_pages(app, world, eight, monkeypatch):
    monkeypatch.setattr(web_queue, "PAGE_SIZE", 3)
    monkeypatch.setattr(web_queue, "COUNT_CAP", 5)
    client = client_for(app, "agent.occitanie")
    html = client.get("/ui/dossiers").text
    assert "Plus de 5 dossiers" in html and "3 dossiers sur plus de 5" in html
    assert _ids(client.get("/ui/dossiers" + _link(html, "next")).text) == eight[3:6]


def test_a_tampered_cursor_falls_back_to_the_first_page_with_a_french_notice(app, world, eight):
    html = client_for(app, "agent.occitanie").get("/ui/dossiers", params={"cursor": "pas-un-curseur", "page": 2}).text
    assert "Lien de page périmé ou illisible" in html and len(_ids(html)) == 8


def test_a_search_ignores_case_and_accents_and_finds_reference_name_and_siren(world, app):
    forges = world.dossier("eligibility_review", company=_company("Forges Électriques de l'Œuvre", 42))
    other = world.dossier("eligibility_review", company=_company("Atelier Garonne 100%_net", 43))
    with world.uow_factory() as uow:
        reference = uow.session.get(m.Dossier, forges).reference
        siren = uow.session.get(m.Dossier, forges).company_facts["siren"]
    client = client_for(app, "agent.occitanie")

    def found(q):
        return set(_ids(client.get("/ui/dossiers", params={"q": q}).text))

    for q in ("forges", "ÉLECTRIQUES", "electriques", "oeuvre", "l'œuvre", reference.lower()):
        assert found(q) == {forges}, q
    assert found(siren[2:8]) == {forges, other}
    assert found("100%_") == {other} and found("%") == {other} and found("_") == {other}
    assert found("forges\nélectriques") == set()  # a search never spans two fields
    with world.uow_factory() as uow:
        from services.search import search_dossiers
        officer = world_actor(world)
        assert [x["id"] for x in search_dossiers(uow, officer, q="Electriques")["items"]] == [forges]


def test_the_consultants_offered_are_the_programmes_own_each_once(world):
    world.dossier("diagnostic")
    world.dossier("diagnostic")
    with world.uow_factory() as uow:
        assigned = set(uow.session.scalars(select(m.Dossier.consultant).where(m.Dossier.consultant.is_not(None))))
        assert known_consultants(uow.session, "occitanie-prif") == sorted(assigned) and len(assigned) == 1
        assert known_consultants(uow.session, "pdl-ami-idf-exemple") == []
