"""Council sessions through the API: the agenda, and a session's bulk vote where each dossier's
vote stands or falls on its own."""
from __future__ import annotations

from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, FINANCE, GARONNE, HEAD, OFFICER, OFFICER_NAQ, at, counts, submit, to_action_plan


def _two_proposed(sign_in, clock) -> tuple[int, int, int]:
    applicant, officer = sign_in(APPLICANT), sign_in(OFFICER)
    a, b, c = (submit(applicant, GARONNE) for _ in range(3))
    for d in (a, b):
        to_action_plan(sign_in, clock, d)
    clock.set(at("2021-03-25T09:00:00+01:00"))
    for d in (a, b):
        officer.ok(d, "propose_for_vote", {"session": "CP-2021-04"})
    clock.set(at("2021-04-09T14:00:00+02:00"))
    return a, b, c


def test_the_agenda_lists_the_session_and_its_proposed_dossiers(sign_in, clock):
    a, b, _ = _two_proposed(sign_in, clock)
    sessions = sign_in(FINANCE).get("/council-sessions").json()
    assert sessions == [{"code": "CP-2021-04", "programme": "occitanie-prif", "session_date": "2021-04-08",
                         "agenda_closes_on": "2021-04-01", "dossiers": 2}]
    agenda = sign_in(HEAD).get("/council-sessions/CP-2021-04").json()
    assert [x["id"] for x in agenda["items"]] == [a, b]
    assert {x["state"] for x in agenda["items"]} == {"ready_for_vote"}
    assert sign_in(OFFICER_NAQ).get("/council-sessions").json() == []
    assert sign_in(OFFICER_NAQ).get("/council-sessions/CP-2021-04").status_code == 404


def test_a_bulk_vote_applies_each_vote_on_its_own_and_reports_each_result(sign_in, clock, uow_factory):
    a, b, c = _two_proposed(sign_in, clock)
    head = sign_in(HEAD)
    version_b = head.get(f"/dossiers/{b}").json()["version"]
    r = head.post("/council-sessions/CP-2021-04/votes", json={"votes": [
        {"dossier_id": a, "outcome": "approved", "deliberation": "CP/2021-04/17"},
        {"dossier_id": b, "outcome": "approved", "deliberation": "CP/2021-04/18", "expected_version": version_b - 1},
        {"dossier_id": c, "outcome": "approved", "deliberation": "CP/2021-04/19"},
        {"dossier_id": 999_999, "outcome": "rejected", "deliberation": "CP/2021-04/20"},
    ]})
    assert r.status_code == 200
    body = r.json()
    assert (body["applied"], body["refused"]) == (1, 3)
    results = {x["dossier_id"]: x for x in body["results"]}
    assert results[a]["ok"] and results[a]["state"] == "approved"
    assert (results[b]["status"], results[b]["refused"]["rule"], results[b]["refused"]["current_version"]) == (409, "conflict", version_b)
    assert (results[c]["status"], results[c]["refused"]["rule"]) == (409, "not_allowed")  # not on the agenda: still submitted
    assert (results[999_999]["status"], results[999_999]["refused"]["rule"]) == (404, "not_found")
    assert head.get(f"/dossiers/{b}").json()["state"] == "ready_for_vote"
    assert head.get(f"/dossiers/{a}").json()["aid"]["total"] == "17500.00"


def test_a_bulk_vote_retried_with_its_key_is_answered_from_the_first_and_applied_once(sign_in, clock, uow_factory):
    a, b, _ = _two_proposed(sign_in, clock)
    head = sign_in(HEAD)
    votes = {"votes": [{"dossier_id": a, "outcome": "approved", "deliberation": "CP/2021-04/17"},
                       {"dossier_id": b, "outcome": "adjourned"}]}
    key = {"Idempotency-Key": "seance-CP-2021-04"}
    first = head.post("/council-sessions/CP-2021-04/votes", json=votes, headers=key)
    events = counts(uow_factory)["events"]
    again = head.post("/council-sessions/CP-2021-04/votes", json=votes, headers=key)
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert counts(uow_factory)["events"] == events
    assert first.json()["applied"] == 2


def test_only_the_head_votes(sign_in, clock):
    a, _, _ = _two_proposed(sign_in, clock)
    for user in (OFFICER, FINANCE, APPLICANT):
        r = sign_in(user).post("/council-sessions/CP-2021-04/votes",
                               json={"votes": [{"dossier_id": a, "outcome": "approved", "deliberation": "X"}]})
        assert r.status_code == 403, user


def test_the_head_plans_a_session_through_the_api_and_a_sunday_is_refused_naming_the_field(sign_in, clock):
    clock.set(at("2021-03-22T10:00:00+01:00"))
    head = sign_in(HEAD)
    planned = head.post("/council-sessions", json={"code": "CP-2021-04-22", "programme": "occitanie-prif",
                                                   "session_date": "2021-04-22", "agenda_closes_on": "2021-04-15"})
    assert planned.status_code == 201, planned.text
    assert planned.json() == {"code": "CP-2021-04-22", "programme": "occitanie-prif", "session_date": "2021-04-22",
                              "agenda_closes_on": "2021-04-15", "dossiers": 0}
    sunday = head.post("/council-sessions", json={"code": "CP-2021-04-25", "programme": "occitanie-prif",
                                                  "session_date": "2021-04-25", "agenda_closes_on": "2021-04-16"})
    assert sunday.status_code == 422
    assert (sunday.json()["rule"], sunday.json()["field"]) == ("session_not_working_day", "session_date")
    assert sunday.json()["title"] == "Séance un jour non ouvré"
    assert sign_in(OFFICER).post("/council-sessions", json={
        "code": "CP-X", "programme": "occitanie-prif", "session_date": "2021-04-22",
        "agenda_closes_on": "2021-04-15"}).status_code == 403
    assert [s["code"] for s in sign_in(FINANCE).get("/council-sessions").json()] == ["CP-2021-04-22"]


def test_a_vote_before_the_sessions_day_is_refused_through_the_api(sign_in, clock):
    applicant, officer = sign_in(APPLICANT), sign_in(OFFICER)
    d = submit(applicant, GARONNE)
    to_action_plan(sign_in, clock, d)
    clock.set(at("2021-03-25T09:00:00+01:00"))
    officer.ok(d, "propose_for_vote", {"session": "CP-2021-04"})  # sits on 08/04/2021
    clock.set(at("2021-04-07T14:00:00+02:00"))
    r = sign_in(HEAD).post("/council-sessions/CP-2021-04/votes", json={"votes": [
        {"dossier_id": d, "outcome": "approved", "deliberation": "CP/2021-04/17"}]})
    result = r.json()["results"][0]
    assert (result["ok"], result["status"], result["refused"]["rule"]) == (False, 422, "session_not_held")
