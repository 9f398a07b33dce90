"""Dossiers through the API: a whole life with the golden amounts, searching, versions (ETag,
If-Match), idempotent retries, refusals as problem details, and hostile inputs that change
nothing."""
from __future__ import annotations

import threading

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, FINANCE, GARONNE, HEAD, OFFICER, at, counts, submit, to_action_plan
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from db import models as m
from db.engine import make_engine
from db.models_auth import IdempotencyKey
from tests.conftest import POSTGRES_URL


def test_the_golden_sme_dossier_lives_its_whole_life_through_the_api(sign_in, clock):
    applicant, officer, head, finance = sign_in(APPLICANT), sign_in(OFFICER), sign_in(HEAD), sign_in(FINANCE)
    d = submit(applicant, GARONNE)
    to_action_plan(sign_in, clock, d)
    clock.set(at("2021-03-25T09:00:00+01:00"))
    proposed = officer.ok(d, "propose_for_vote", {"session": "CP-2021-04"})
    assert proposed["state"] == "ready_for_vote"
    assert proposed["details"]["aid"] == {"phase1": "5500.00", "phase2": "12000.00", "total": "17500.00"}
    assert {"rule": "day_rate_cap", "phase": 2, "base": "expense", "amount": "2000.00"} in proposed["adjustments"]
    clock.set(at("2021-04-09T14:00:00+02:00"))
    assert head.ok(d, "record_vote", {"session": "CP-2021-04", "outcome": "approved",
                                      "deliberation": "CP/2021-04/17"})["state"] == "approved"
    clock.set(at("2021-04-20T10:00:00+02:00"))
    applicant.ok(d, "claim_payment", {"phase": 1, "kind": "final",
                                      "invoices": [{"date": "2021-03-10", "days": 5, "day_rate": "1100.00"}]})
    assert finance.ok(d, "pay")["details"]["paid"] == "5500.00"
    clock.set(at("2021-05-03T10:00:00+02:00"))
    refused = applicant.command(d, "claim_payment", {"phase": 2, "kind": "advance", "amount": "9000.00"})
    assert refused.status_code == 422
    assert refused.json()["rule"] == "advance_cap"
    applicant.ok(d, "claim_payment", {"phase": 2, "kind": "advance", "amount": "8400.00"})
    finance.ok(d, "pay")
    clock.set(at("2021-11-15T10:00:00+01:00"))
    applicant.ok(d, "claim_payment", {"phase": 2, "kind": "final", "invoices": [
        {"date": "2021-06-30", "days": 10, "day_rate": "1200.00"}, {"date": "2021-10-29", "days": 8, "day_rate": "1200.00"}]})
    clock.set(at("2021-11-19T10:00:00+01:00"))
    assert finance.ok(d, "pay")["state"] == "closed"
    final = officer.get(f"/dossiers/{d}").json()
    assert final["paid"] == "16300.00" and final["aid"]["total"] == "17500.00"
    assert final["allowed_commands"] == []
    claims = applicant.get(f"/dossiers/{d}/payment-claims").json()
    assert [(c["phase"], c["kind"], c["status"]) for c in claims] == [(1, "final", "paid"), (2, "advance", "paid"),
                                                                       (2, "final", "paid")]
    events = officer.get(f"/dossiers/{d}/events").json()
    assert events[0]["command"] == "submit_candidacy" and events[-1]["command"] == "pay"
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(events, events[1:]))


def test_a_candidacy_outside_any_open_window_is_refused_naming_the_rule(sign_in, clock, uow_factory):
    clock.set(at("2023-02-01T10:00:00+01:00"))
    before = counts(uow_factory)
    r = sign_in(APPLICANT).post("/dossiers", json={"programme": "occitanie-prif", "company": GARONNE})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert (problem["type"], problem["rule"], problem["field"]) == ("/problems/window_closed", "window_closed", "at")
    assert problem["status"] == 422 and problem["title"] and "01/02/2023" in problem["detail"]
    assert counts(uow_factory) == before


def test_a_draft_is_submitted_later_by_its_command(sign_in):
    applicant = sign_in(APPLICANT)
    r = applicant.post("/dossiers", json={"programme": "occitanie-prif", "company": GARONNE, "submit": False})
    assert r.status_code == 201 and r.json()["state"] == "draft"
    assert applicant.ok(r.json()["dossier_id"], "submit_candidacy")["state"] == "submitted"


def test_an_applicant_cannot_file_for_another_company(sign_in):
    r = sign_in(APPLICANT).post("/dossiers", json={"programme": "occitanie-prif",
                                                   "company": {**GARONNE, "siren": "443061841"}})
    assert r.status_code == 403 and r.json()["field"] == "company.siren"


def test_a_command_in_the_wrong_state_is_a_conflict_and_a_malformed_body_names_the_field(sign_in):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    r = officer.command(d, "accept_diagnostic")
    assert r.status_code == 409 and r.json()["rule"] == "not_allowed" and r.json()["field"] == "do"
    r = officer.command(d, "declare_eligible", {"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": 1100.5}})
    assert r.status_code == 422
    assert (r.json()["rule"], r.json()["field"]) == ("invalid_input", "phase1.day_rate")
    r = officer.command(d, "request_documents", {"kinds": ["kbis"], "extra": 1})
    assert r.status_code == 422 and r.json()["field"] == "extra"


def test_an_unknown_command_is_named_as_such_and_lists_the_commands_without_revealing_the_dossier(sign_in, uow_factory):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    before = counts(uow_factory)
    r = officer.command(d, "fly")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (r.json()["rule"], r.json()["field"]) == ("unknown_command", "command")
    assert "« fly »" in r.json()["detail"] and "take_for_review" in r.json()["detail"]
    missing = officer.command(999_999, "fly")
    assert missing.status_code == 404 and missing.json()["detail"] == r.json()["detail"]  # exists or not: alike
    assert counts(uow_factory) == before
    assert "/dossiers/{dossier_id}/commands/{command}" not in officer.get("/openapi.json").json()["paths"]


def test_the_etag_is_the_version_and_a_stale_if_match_answers_409_with_the_current_version(sign_in, uow_factory):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    r = officer.get(f"/dossiers/{d}")
    etag = r.headers["etag"]
    assert etag == f'"{r.json()["version"]}"'
    assert officer.get(f"/dossiers/{d}", headers={"If-None-Match": etag}).status_code == 304
    stale = f'"{r.json()["version"] - 1}"'
    before = counts(uow_factory)
    r = officer.command(d, "take_for_review", headers={"If-Match": stale})
    assert r.status_code == 409
    assert r.json()["rule"] == "conflict" and r.json()["current_version"] == int(etag.strip('"'))
    assert counts(uow_factory) == before
    r = officer.command(d, "take_for_review", headers={"If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] == f'"{r.json()["version"]}"' != etag
    assert officer.command(d, "request_documents", {"kinds": ["rib"]}, headers={"If-Match": "trois"}).status_code == 422


def test_a_retried_request_with_the_same_idempotency_key_applies_once_and_gets_the_same_answer(sign_in, uow_factory):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    officer.ok(d, "take_for_review")
    key = {"Idempotency-Key": "demande-pieces-42"}
    first = officer.command(d, "request_documents", {"kinds": ["rib"]}, headers=key)
    events = counts(uow_factory)["events"]
    again = officer.command(d, "request_documents", {"kinds": ["rib"]}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert counts(uow_factory)["events"] == events
    other_body = officer.command(d, "request_documents", {"kinds": ["kbis"]}, headers=key)
    assert other_body.status_code == 422 and other_body.json()["rule"] == "idempotency_key_reused"
    # The same key is the officer's own: another route, or another user, is another request.
    assert officer.command(d, "request_documents", {"kinds": ["kbis"]}, headers={"Idempotency-Key": "autre"}).status_code == 200


def test_a_refusal_is_replayed_too_and_a_new_candidacy_is_created_once(sign_in, uow_factory, clock):
    applicant = sign_in(APPLICANT)
    key = {"Idempotency-Key": "candidature-2021-02"}
    body = {"programme": "occitanie-prif", "company": GARONNE}
    first = applicant.post("/dossiers", json=body, headers=key)
    second = applicant.post("/dossiers", json=body, headers=key)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert second.headers["location"] == first.headers["location"]
    assert counts(uow_factory)["dossiers"] == 1
    clock.set(at("2023-02-01T10:00:00+01:00"))
    refusals = [applicant.post("/dossiers", json=body, headers={"Idempotency-Key": "trop-tard"}) for _ in range(2)]
    assert [r.status_code for r in refusals] == [422, 422] and refusals[1].headers["idempotent-replayed"] == "true"


def test_two_identical_requests_racing_with_one_key_apply_once(app, sign_in, uow_factory):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    officer.ok(d, "take_for_review")
    events = counts(uow_factory)["events"]
    answers = []

    def send():
        with TestClient(app) as c:
            answers.append(c.post(f"/dossiers/{d}/commands/request_documents", json={"kinds": ["rib"]},
                                  headers={**officer.headers, "Idempotency-Key": "course"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts(uow_factory)["events"] == events + 1
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}
    with uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
        assert uow.session.scalar(select(func.count()).select_from(m.DocumentRequest)) == 1


def test_officers_racing_on_one_dossier_get_one_success_and_conflicts_never_a_server_error(app, sign_in, uow_factory):
    officer = sign_in(OFFICER)
    dossiers = [submit(sign_in(APPLICANT), GARONNE) for _ in range(3)]
    answers = []

    def send(d):
        with TestClient(app, raise_server_exceptions=False) as c:
            answers.append((d, c.post(f"/dossiers/{d}/commands/take_for_review", headers=officer.headers)))

    threads = [threading.Thread(target=send, args=(d,)) for d in dossiers for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in dossiers:
        statuses = sorted(r.status_code for x, r in answers if x == d)
        assert statuses == [200, 409, 409, 409], (d, statuses)
    assert {r.json()["rule"] for _, r in answers if r.status_code == 409} <= {"conflict", "not_allowed"}
    assert {s for s in counts(uow_factory)["states"]} == {"eligibility_review"}


def test_search_filters_by_state_programme_officer_deadline_and_text_with_pagination(sign_in, clock):
    applicant, officer = sign_in(APPLICANT), sign_in(OFFICER)
    ids = [submit(applicant, GARONNE) for _ in range(5)]
    officer.ok(ids[0], "take_for_review")
    officer.ok(ids[1], "take_for_review")
    officer.ok(ids[1], "request_documents", {"kinds": ["rib"]})  # lapses on 2021-03-03 (J+30, working day)

    def listed(**params):
        r = officer.get("/dossiers", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    assert {x["id"] for x in listed(state="eligibility_review")["items"]} == {ids[0], ids[1]}
    assert {x["id"] for x in listed(officer="me")["items"]} == {ids[0], ids[1]}
    assert listed(programme="pdl-ami-idf")["total"] == 0
    due = listed(deadline_before="2021-03-31")
    assert [x["id"] for x in due["items"]] == [ids[1]] and due["items"][0]["next_deadline"] == "2021-03-03"
    assert listed(deadline_before="2021-02-15")["total"] == 0
    page = listed(sort="id", limit=2, offset=2)
    assert [x["id"] for x in page["items"]] == ids[2:4] and page["total"] == 5
    assert [x["id"] for x in listed(sort="-id", limit=2)["items"]] == [ids[4], ids[3]]
    reference = officer.get(f"/dossiers/{ids[3]}").json()["reference"]
    assert [x["id"] for x in listed(q=reference)["items"]] == [ids[3]]
    assert listed(q="garonne")["total"] == 5 and listed(q="732829")["total"] == 5
    assert officer.get("/dossiers", params={"sort": "password"}).status_code == 422
    typo = officer.get("/dossiers", params={"programme": "occitanie-pirf"})  # not an empty list: a typo
    assert typo.status_code == 422 and (typo.json()["rule"], typo.json()["field"]) == ("unknown_programme", "programme")
    assert "occitanie-prif" in typo.json()["detail"]
    assert officer.get("/dossiers", params={"limit": 10_000}).status_code == 422


def test_a_sql_looking_search_string_is_only_text_to_look_for(sign_in, uow_factory):
    officer = sign_in(OFFICER)
    submit(sign_in(APPLICANT), GARONNE)
    before = counts(uow_factory)
    for q in ("'; DROP TABLE dossiers; --", "' OR '1'='1", "%", "_", "\\", "garonne%' UNION SELECT password_hash FROM users --"):
        r = officer.get("/dossiers", params={"q": q})
        assert r.status_code == 200 and r.json()["total"] == 0, q
    assert counts(uow_factory) == before
    assert officer.get("/dossiers", params={"q": "Garonne"}).json()["total"] == 1
    assert officer.get("/dossiers", params={"q": "bad\x00byte"}).status_code == 422


def test_a_ten_thousand_item_body_is_refused_cleanly_and_changes_nothing(sign_in, uow_factory):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    officer.ok(d, "take_for_review")
    before = counts(uow_factory)
    r = officer.command(d, "request_documents", {"kinds": ["rib"] * 10_000})
    assert r.status_code == 422 and r.json()["field"] == "kinds"
    r = sign_in(HEAD).post("/council-sessions/CP-2021-04/votes",
                           json={"votes": [{"dossier_id": d, "outcome": "adjourned"}] * 10_000})
    assert r.status_code == 422 and r.json()["field"] == "votes"
    assert counts(uow_factory) == before


def test_an_oversized_json_body_is_refused_before_it_is_parsed(sign_in):
    r = sign_in(OFFICER).post("/dossiers/1/commands/declare_ineligible", content=b'{"reason": "' + b"x" * (3 * 1024 * 1024) + b'"}',
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["rule"] == "body_too_large" and "2 Mo" in r.json()["detail"]


def test_an_oversized_json_body_sent_in_chunks_gets_the_same_refusal(sign_in):
    """No Content-Length: the body is cut as it streams in, and the answer is the same problem."""
    officer = sign_in(OFFICER)

    def chunks():
        yield b'{"reason": "'
        for _ in range(3 * 1024):
            yield b"x" * 1024
        yield b'"}'

    streamed = officer.client.post("/dossiers/1/commands/declare_ineligible", content=chunks(),
                                   headers={**officer.headers, "Content-Type": "application/json"})
    declared = officer.post("/dossiers/1/commands/declare_ineligible", content=b"x" * (3 * 1024 * 1024),
                            headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json() == declared.json()
    assert streamed.json()["rule"] == "body_too_large"


def test_programmes_and_health_answer(sign_in, client):
    programmes = sign_in(OFFICER).get("/programmes").json()
    assert {p["id"] for p in programmes} == {"occitanie-prif", "naq-udf4", "pdl-ami-idf", "naq-udf4-exemple",
                                             "pdl-ami-idf-exemple"}
    assert next(p for p in programmes if p["id"] == "occitanie-prif")["open"] is True
    detail = sign_in(APPLICANT).get("/programmes/occitanie-prif").json()
    assert detail["money"]["day_rate_cap"] == "1200.00"
    assert sign_in(APPLICANT).get("/programmes/inconnu").status_code == 404
    assert client.get("/health").json() == {"status": "ok", "database": "ok", "version": "0.1.0"}


@pytest.mark.skipif(not POSTGRES_URL, reason="the server drops the connections (PostgreSQL suite)")
def test_when_the_database_drops_its_connections_a_request_answers_503_and_the_next_one_succeeds(sign_in, uow_factory,
                                                                                                 postgres_engine):
    officer = sign_in(OFFICER)
    dossier = submit(sign_in(APPLICANT), GARONNE)
    assert officer.get(f"/dossiers/{dossier}").status_code == 200
    # A restart of the server, as the API's pooled connections see it: every one is dropped.
    admin = make_engine(uow_factory.engine.url.render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        conn.commit()
    admin.dispose()
    postgres_engine.dispose()  # the test harness's own connections were dropped too
    answer = officer.get(f"/dossiers/{dossier}")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/problem+json"
    assert officer.get(f"/dossiers/{dossier}").status_code == 200
    assert officer.command(dossier, "take_for_review").status_code == 200
