"""Work sharing in the web workspace through HTTP (no browser): a dossier taken or handed over
from its page, the queue's views « À moi », « À mon équipe », « Non affectés », and the bulk
actions of a selection — one result line per dossier, a refusal that writes nothing for its
dossier and blocks no other."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_support import PASSWORD, SECRET, World, seed_users, use_fast_passwords

from db import models as m
from services import commands
from services.demo_teams import seed_demo_teams
from web.app import create_standalone_app


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    seed_demo_teams(uow_factory, w.clock)
    return w


@pytest.fixture
def app(world):
    return create_standalone_app(uow_factory=world.uow_factory, clock=world.clock, secret_key=SECRET)


def client_for(app, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/ui/login")
    response = client.post("/ui/login", data={"username": username, "password": PASSWORD,
                                              "csrf_token": csrf_of(page.text), "next": ""})
    assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def text_of(html: str) -> str:
    from html import unescape

    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def officer_of(world, did):
    with world.uow_factory() as uow:
        return uow.dossier(did).officer


def events_of(world, did):
    with world.uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == did))


def test_an_officer_takes_an_unassigned_dossier_from_its_page_and_the_history_names_it(app, world):
    did = world.dossier("submitted")
    client = client_for(app, "agent.occitanie")
    page = client.get(f"/ui/dossiers/{did}").text
    assert "Ce dossier n'est affecté à personne." in page and "Prendre ce dossier" in page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    response = client.post(f"/ui/dossiers/{did}/affectation",
                           data={"csrf_token": csrf_of(page), "version": version, "action": "take"})
    assert response.status_code == 303
    assert officer_of(world, did) == "agent.occitanie"
    after = text_of(client.get(f"/ui/dossiers/{did}").text)
    assert "Dossier affecté à Claire Martin, chargée de mission (Occitanie)." in after
    assert "Dossier pris en charge par Claire Martin, chargée de mission (Occitanie)." in after


def test_a_handover_without_a_note_is_refused_beside_the_form_and_changes_nothing(app, world):
    did = world.dossier("eligibility_review")
    before = events_of(world, did)
    client = client_for(app, "agent.occitanie")
    page = client.get(f"/ui/dossiers/{did}").text
    assert "Transmettre le dossier" in page
    response = client.post(f"/ui/dossiers/{did}/affectation",
                           data={"csrf_token": csrf_of(page), "action": "assign", "officer": "agent2.occitanie"})
    assert response.status_code == 422
    assert "note de transmission" in text_of(response.text)
    assert response.text.count("data-refusal") == 1  # beside the assignment form only
    assert 'id="assign-error"' in response.text
    assert officer_of(world, did) == "agent.occitanie" and events_of(world, did) == before


def test_the_queue_views_show_mine_my_team_and_the_unassigned(app, world):
    unassigned = world.dossier("submitted")
    mine = world.dossier("eligibility_review")
    client = client_for(app, "agent2.occitanie")
    refs = {}
    with world.uow_factory() as uow:
        refs = {did: uow.dossier(did).reference for did in (unassigned, mine)}
    none = client.get("/ui/dossiers?assigned=none").text
    assert refs[unassigned] in none and refs[mine] not in none
    team = text_of(client.get("/ui/dossiers?assigned=team").text)
    assert refs[mine] in team and refs[unassigned] not in team
    assert "Claire Martin, chargée de mission (Occitanie)" in team  # the assignee by its display name
    me = client.get("/ui/dossiers?assigned=me").text
    assert refs[mine] not in me and refs[unassigned] not in me
    odd = text_of(client.get("/ui/dossiers?assigned=autre").text)
    assert "Affectation « autre » inconnue : filtre ignoré." in odd


def _selection(page: str, ids) -> list[str]:
    values = re.findall(r'name="dossier" value="(\d+\.\d+)"', page)
    return [v for v in values if int(v.split(".")[0]) in set(ids)]


def test_the_head_assigns_a_selection_and_reads_one_line_per_dossier_a_refusal_blocking_no_other(app, world):
    ok = [world.dossier("submitted") for _ in range(3)]
    finished = world.dossier("submitted")
    world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=finished, reason="Hors périmètre.")
    before = events_of(world, finished)
    client = client_for(app, "cheffe.occitanie")
    page = client.get("/ui/dossiers?closed=1").text
    assert 'id="bulk-form"' in page and "Affecter les dossiers cochés" in page
    chosen = _selection(page, ok + [finished])
    assert len(chosen) == 4
    response = client.post("/ui/dossiers/selection", data={"csrf_token": csrf_of(page), "action": "assign",
                                                           "officer": "agent2.occitanie", "dossier": chosen})
    assert response.status_code == 200
    lines = [text_of(x) for x in re.findall(r"<li class=\"result-[a-z]+\"[^>]*>(.*?)</li>", response.text, re.S)]
    assert len(lines) == 4
    with world.uow_factory() as uow:
        refs = {did: uow.dossier(did).reference for did in ok + [finished]}
    for did in ok:
        assert f"{refs[did]} — affecté à Julien Fabre, chargé de mission (Occitanie)" in lines
        assert officer_of(world, did) == "agent2.occitanie"
    assert any(x.startswith(f"{refs[finished]} — refusé : Le dossier est terminé (") and
               x.endswith(") : il n'est plus à affecter.") for x in lines), lines
    assert "3 faits, 1 refusé" in text_of(response.text)
    assert officer_of(world, finished) is None and events_of(world, finished) == before


def test_a_selection_seen_on_an_older_version_is_refused_for_that_dossier_only(app, world):
    first, second = world.dossier("submitted"), world.dossier("submitted")
    client = client_for(app, "agent.occitanie")
    page = client.get("/ui/dossiers").text
    chosen = _selection(page, [first, second])
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=second)  # moves on meanwhile
    response = client.post("/ui/dossiers/selection", data={"csrf_token": csrf_of(page), "action": "take",
                                                           "dossier": chosen})
    text = text_of(response.text)
    assert "1 fait, 1 refusé" in text and "modifié" in text
    assert officer_of(world, first) == "agent.occitanie"


def test_a_bulk_action_without_a_checked_dossier_says_so_and_does_nothing(app, world):
    world.dossier("submitted")
    client = client_for(app, "cheffe.occitanie")
    page = client.get("/ui/dossiers").text
    response = client.post("/ui/dossiers/selection", data={"csrf_token": csrf_of(page), "action": "assign",
                                                           "officer": "agent2.occitanie"},
                           headers={"referer": "http://testserver/ui/dossiers"})
    assert response.status_code == 303
    assert "cochez au moins un dossier" in text_of(client.get("/ui/dossiers").text)


def test_finance_and_the_auditor_see_no_selection_and_cannot_post_one(app, world):
    world.dossier("submitted")
    for username in ("finances.occitanie", "audit.occitanie"):
        client = client_for(app, username)
        page = client.get("/ui/dossiers").text
        assert 'id="bulk-form"' not in page and 'name="dossier"' not in page
        response = client.post("/ui/dossiers/selection", data={"csrf_token": csrf_of(page), "action": "take",
                                                               "dossier": ["1.1"]})
        assert response.status_code == 403


def test_an_officer_requests_the_same_pieces_for_a_selection_and_the_head_is_not_offered_it(app, world):
    dossiers = [world.dossier("eligibility_review") for _ in range(2)]
    client = client_for(app, "agent.occitanie")
    page = client.get("/ui/dossiers").text
    assert "Demander ces pièces" in page
    response = client.post("/ui/dossiers/selection", data={"csrf_token": csrf_of(page), "action": "request_documents",
                                                           "kinds": ["rib"], "dossier": _selection(page, dossiers)})
    text = text_of(response.text)
    assert "2 dossiers : 2 faits, 0 refusé." in text and text.count("pièces demandées (RIB) ; caducité le ") == 2
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(m.DocumentRequest)) == 2
    assert "Demander ces pièces" not in client_for(app, "cheffe.occitanie").get("/ui/dossiers").text


def test_what_the_service_did_by_itself_is_signed_usine_automatique_once_in_the_history(world, app):
    did = world.dossier("submitted")
    with world.uow_factory() as uow:
        commands.lapse(uow=uow, clock=world.clock, dossier_id=did, reason="Pièces non reçues dans le délai.")
    shown = text_of(client_for(app, "agent.occitanie").get(f"/ui/dossiers/{did}").text)
    assert "Usine (automatique)" in shown
    assert "usine (Usine (automatique))" not in shown and "Usine (automatique) (Usine (automatique))" not in shown


def test_an_empty_queue_says_that_finished_dossiers_are_hidden_and_how_to_see_them(world, app):
    client = client_for(app, "agent.occitanie")
    shown = text_of(client.get("/ui/dossiers?q=introuvable-zz").text)
    assert "Aucun dossier ne correspond à ces filtres. Les dossiers terminés" in shown
    assert "cochez « Inclure les dossiers terminés »" in shown
    assert "Les dossiers terminés" not in text_of(client.get("/ui/dossiers?q=introuvable-zz&closed=1").text)
