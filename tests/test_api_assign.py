"""Work sharing through the API: assigning one dossier, and `POST /dossiers/bulk` — one command
per dossier, one result per dossier, a refusal writing nothing and blocking no other."""
from __future__ import annotations

from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, FINANCE, GARONNE, HEAD, OFFICER, submit

from services.demo_teams import seed_demo_teams


def test_the_head_assigns_a_dossier_and_an_officer_of_another_region_is_refused_by_name(sign_in, clock, uow_factory):
    seed_demo_teams(uow_factory, clock)
    did = submit(sign_in(APPLICANT), GARONNE)
    head = sign_in(HEAD)
    r = head.post(f"/dossiers/{did}/assignment", json={"officer": "agent2.occitanie"})
    assert r.status_code == 200, r.text
    assert (r.json()["officer"], r.json()["kind"], r.json()["officer_name"]) == \
        ("agent2.occitanie", "route", "Julien Fabre, chargé de mission (Occitanie)")
    refused = head.post(f"/dossiers/{did}/assignment", json={"officer": "agent.pays-de-la-loire"})
    assert refused.status_code == 422 and refused.json()["rule"] == "assignee_not_officer"
    assert sign_in(FINANCE).post(f"/dossiers/{did}/assignment", json={"officer": OFFICER}).status_code == 403


def test_a_bulk_take_reports_each_dossier_and_one_already_taken_is_refused_alone(sign_in, clock, uow_factory):
    seed_demo_teams(uow_factory, clock)
    applicant = sign_in(APPLICANT)
    a, b, c = (submit(applicant, GARONNE) for _ in range(3))
    sign_in("agent2.occitanie").post(f"/dossiers/{b}/assignment", json={"officer": "agent2.occitanie"})
    r = sign_in(OFFICER).post("/dossiers/bulk", json={"action": "take", "dossiers": [a, b, c, 999_999]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["done"], body["refused"]) == (2, 2)
    items = {x["dossier_id"]: x for x in body["items"]}
    assert items[a]["ok"] and items[a]["line"].endswith("— affecté à Claire Martin, chargée de mission (Occitanie)")
    assert (items[b]["ok"], items[b]["rule"]) == (False, "assignment_taken")
    assert items[b]["line"].startswith(f"{items[b]['reference']} — refusé : Le dossier est déjà affecté à Julien Fabre")
    assert (items[999_999]["ok"], items[999_999]["rule"], items[999_999]["reference"]) == (False, "not_found", None)


def test_a_bulk_request_with_an_unknown_action_or_piece_is_refused_whole(sign_in, clock):
    did = submit(sign_in(APPLICANT), GARONNE)
    officer = sign_in(OFFICER)
    assert officer.post("/dossiers/bulk", json={"action": "delete", "dossiers": [did]}).status_code == 422
    r = officer.post("/dossiers/bulk", json={"action": "request_documents", "dossiers": [did], "kinds": ["passeport"]})
    assert r.status_code == 422 and r.json()["rule"] == "invalid_input"
