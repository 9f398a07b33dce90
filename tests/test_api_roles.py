"""Who may do what through the API: for every role, one allowed and one forbidden action per
resource; another region's (or company's) dossier answers 404 exactly like a dossier that does
not exist; an auditor changes nothing, whatever route it tries."""
from __future__ import annotations

import re

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import ADMIN, APPLICANT, AUDITOR, CONSULTANT, FINANCE, HEAD, OFFICER, OFFICER_NAQ, PDF, World, counts
from fastapi.routing import APIRoute, iter_route_contexts

GOOD_PDF = {"files": {"file": ("rapport.pdf", PDF, "application/pdf")}}


def _vote(dossier: str, outcome="approved") -> dict:
    return {"session": "CP-2021-04", "outcome": outcome, "deliberation": "CP/2021-04/18"}


# (resource, "allowed" | "forbidden", method, path with {ready} {paying} {fresh} {naq} {session}, request kwargs, status)
MATRIX = {
    "applicant": [
        ("programmes", "allowed", "GET", "/programmes", {}, 200),
        ("programmes", "forbidden", "POST", "/programmes/sync", {}, 403),
        ("companies", "allowed", "GET", "/companies/732829320", {}, 200),
        ("companies", "forbidden", "GET", "/companies/443061841", {}, 404),
        ("dossiers", "allowed", "GET", "/dossiers/{fresh}", {}, 200),
        ("dossiers", "forbidden", "GET", "/dossiers/{naq}", {}, 404),
        ("commands", "allowed", "POST", "/dossiers/{fresh}/commands/withdraw", {"json": {"reason": "Projet reporté."}}, 200),
        ("commands", "forbidden", "POST", "/dossiers/{fresh}/commands/take_for_review", {}, 403),
        ("documents", "allowed", "POST", "/dossiers/{ready}/documents", {"data": {"kind": "rib"}, **GOOD_PDF}, 201),
        ("documents", "forbidden", "POST", "/dossiers/{naq}/documents", {"data": {"kind": "rib"}, **GOOD_PDF}, 404),
        ("payment claims", "allowed", "GET", "/dossiers/{paying}/payment-claims", {}, 200),
        ("payment claims", "forbidden", "GET", "/dossiers/{naq}/payment-claims", {}, 404),
        ("council sessions", "forbidden", "GET", "/council-sessions", {}, 403),
        ("events", "allowed", "GET", "/dossiers/{paying}/events", {}, 200),
        ("events", "forbidden", "GET", "/dossiers/{naq}/events", {}, 404),
        ("users", "forbidden", "GET", "/users", {}, 403),
    ],
    "consultant": [
        ("programmes", "allowed", "GET", "/programmes/occitanie-prif", {}, 200),
        ("programmes", "forbidden", "POST", "/programmes/sync", {}, 403),
        ("companies", "allowed", "GET", "/companies", {}, 200),
        ("companies", "forbidden", "GET", "/companies/443061841", {}, 404),
        ("dossiers", "allowed", "GET", "/dossiers/{ready}", {}, 200),
        ("dossiers", "forbidden", "GET", "/dossiers/{fresh}", {}, 404),  # not assigned to it
        ("commands", "allowed", "POST", "/dossiers/{ready}/commands/provide_documents", {"json": {"kinds": ["invoice"]}}, 200),
        ("commands", "forbidden", "POST", "/dossiers/{ready}/commands/provide_documents", {"json": {"kinds": ["kbis"]}}, 403),
        ("documents", "allowed", "POST", "/dossiers/{ready}/documents", {"data": {"kind": "diagnostic_report"}, **GOOD_PDF}, 201),
        ("documents", "forbidden", "POST", "/dossiers/{ready}/documents", {"data": {"kind": "rib"}, **GOOD_PDF}, 403),
        ("payment claims", "forbidden", "GET", "/dossiers/{paying}/payment-claims", {}, 403),
        ("council sessions", "forbidden", "GET", "/council-sessions", {}, 403),
        ("events", "allowed", "GET", "/dossiers/{ready}/events", {}, 200),
        ("events", "forbidden", "GET", "/dossiers/{naq}/events", {}, 404),
        ("users", "forbidden", "GET", "/users", {}, 403),
    ],
    "officer": [
        ("programmes", "allowed", "GET", "/programmes", {}, 200),
        ("programmes", "forbidden", "POST", "/programmes/sync", {}, 403),
        ("companies", "allowed", "GET", "/companies/732829320", {}, 200),
        ("companies", "forbidden", "GET", "/companies/443061841", {}, 404),
        ("dossiers", "allowed", "GET", "/dossiers?state=submitted", {}, 200),
        ("dossiers", "forbidden", "GET", "/dossiers/{naq}", {}, 404),
        ("commands", "allowed", "POST", "/dossiers/{fresh}/commands/take_for_review", {}, 200),
        ("commands", "forbidden", "POST", "/dossiers/{ready}/commands/record_vote", {"json": _vote("ready")}, 403),
        ("documents", "allowed", "POST", "/dossiers/{fresh}/documents", {"data": {"kind": "rib"}, **GOOD_PDF}, 201),  # by post
        ("documents", "forbidden", "POST", "/dossiers/{naq}/documents", {"data": {"kind": "rib"}, **GOOD_PDF}, 404),
        ("payment claims", "allowed", "GET", "/payment-claims?status=pending", {}, 200),
        ("payment claims", "forbidden", "GET", "/dossiers/{naq}/payment-claims", {}, 404),
        ("council sessions", "allowed", "GET", "/council-sessions/{session}", {}, 200),
        ("council sessions", "forbidden", "GET", "/council-sessions/{naq_session}", {}, 404),
        ("events", "allowed", "GET", "/dossiers/{ready}/events", {}, 200),
        ("events", "forbidden", "GET", "/dossiers/{naq}/events", {}, 404),
        ("users", "forbidden", "POST", "/users/admin/disable", {}, 403),
    ],
    "head": [
        ("programmes", "allowed", "GET", "/programmes", {}, 200),
        ("programmes", "forbidden", "POST", "/programmes/sync", {}, 403),
        ("companies", "allowed", "GET", "/companies", {}, 200),
        ("companies", "forbidden", "GET", "/companies/443061841", {}, 404),
        ("dossiers", "allowed", "GET", "/dossiers/{ready}", {}, 200),
        ("dossiers", "forbidden", "GET", "/dossiers/{naq}", {}, 404),
        ("commands", "allowed", "POST", "/dossiers/{ready}/commands/record_vote", {"json": _vote("ready")}, 200),
        ("commands", "forbidden", "POST", "/dossiers/{fresh}/commands/take_for_review", {}, 403),
        ("documents", "allowed", "GET", "/dossiers/{ready}/documents", {}, 200),
        ("documents", "forbidden", "POST", "/dossiers/{ready}/documents", {"data": {"kind": "rib"}, **GOOD_PDF}, 403),
        ("payment claims", "allowed", "GET", "/dossiers/{paying}/payment-claims", {}, 200),
        ("payment claims", "forbidden", "GET", "/dossiers/{naq}/payment-claims", {}, 404),
        ("council sessions", "allowed", "GET", "/council-sessions/{session}", {}, 200),
        ("council sessions", "forbidden", "POST", "/council-sessions/{naq_session}/votes",
         {"json": {"votes": [{"dossier_id": 1, "outcome": "adjourned"}]}}, 404),
        ("events", "allowed", "GET", "/dossiers/{ready}/events", {}, 200),
        ("events", "forbidden", "GET", "/dossiers/{naq}/events", {}, 404),
        ("users", "forbidden", "GET", "/users", {}, 403),
    ],
    "finance": [
        ("programmes", "allowed", "GET", "/programmes", {}, 200),
        ("programmes", "forbidden", "POST", "/programmes/sync", {}, 403),
        ("companies", "allowed", "GET", "/companies/732829320", {}, 200),
        ("companies", "forbidden", "GET", "/companies/443061841", {}, 404),
        ("dossiers", "allowed", "GET", "/dossiers/{paying}", {}, 200),
        ("dossiers", "forbidden", "GET", "/dossiers/{naq}", {}, 404),
        ("commands", "allowed", "POST", "/dossiers/{paying}/commands/pay", {}, 200),
        ("commands", "forbidden", "POST", "/dossiers/{paying}/commands/claim_payment",
         {"json": {"phase": 2, "kind": "advance", "amount": "1000.00"}}, 403),
        ("documents", "allowed", "GET", "/dossiers/{paying}/documents", {}, 200),
        ("documents", "forbidden", "POST", "/dossiers/{paying}/documents", {"data": {"kind": "invoice"}, **GOOD_PDF}, 403),
        ("payment claims", "allowed", "GET", "/payment-claims?status=pending", {}, 200),
        ("payment claims", "forbidden", "GET", "/dossiers/{naq}/payment-claims", {}, 404),
        ("council sessions", "allowed", "GET", "/council-sessions", {}, 200),
        ("council sessions", "forbidden", "POST", "/council-sessions/{session}/votes",
         {"json": {"votes": [{"dossier_id": 1, "outcome": "adjourned"}]}}, 403),
        ("events", "allowed", "GET", "/dossiers/{paying}/events", {}, 200),
        ("events", "forbidden", "GET", "/dossiers/{naq}/events", {}, 404),
        ("users", "forbidden", "GET", "/users", {}, 403),
    ],
    "auditor": [
        ("programmes", "allowed", "GET", "/programmes", {}, 200),
        ("programmes", "forbidden", "POST", "/programmes/sync", {}, 403),
        ("companies", "allowed", "GET", "/companies/732829320", {}, 200),
        ("companies", "forbidden", "GET", "/companies/443061841", {}, 404),
        ("dossiers", "allowed", "GET", "/dossiers/{paying}", {}, 200),
        ("dossiers", "forbidden", "GET", "/dossiers/{naq}", {}, 404),
        ("commands", "forbidden", "POST", "/dossiers/{paying}/commands/pay", {}, 403),
        ("documents", "allowed", "GET", "/dossiers/{paying}/documents/{paying_document}/content", {}, 200),
        ("documents", "forbidden", "POST", "/dossiers/{paying}/documents", {"data": {"kind": "invoice"}, **GOOD_PDF}, 403),
        ("payment claims", "allowed", "GET", "/payment-claims", {}, 200),
        ("payment claims", "forbidden", "GET", "/dossiers/{naq}/payment-claims", {}, 404),
        ("council sessions", "allowed", "GET", "/council-sessions/{session}", {}, 200),
        ("council sessions", "forbidden", "POST", "/council-sessions/{session}/votes",
         {"json": {"votes": [{"dossier_id": 1, "outcome": "adjourned"}]}}, 403),
        ("events", "allowed", "GET", "/dossiers/{paying}/events", {}, 200),
        ("events", "forbidden", "GET", "/dossiers/{naq}/events", {}, 404),
        ("users", "forbidden", "GET", "/users", {}, 403),
    ],
    "admin": [
        ("programmes", "allowed", "POST", "/programmes/sync", {}, 200),
        ("companies", "forbidden", "GET", "/companies", {}, 403),
        ("dossiers", "forbidden", "GET", "/dossiers", {}, 403),
        ("commands", "forbidden", "POST", "/dossiers/{fresh}/commands/take_for_review", {}, 403),
        ("documents", "forbidden", "GET", "/dossiers/{fresh}/documents", {}, 403),
        ("payment claims", "forbidden", "GET", "/payment-claims", {}, 403),
        ("council sessions", "forbidden", "GET", "/council-sessions", {}, 403),
        ("events", "forbidden", "GET", "/dossiers/{fresh}/events", {}, 403),
        ("users", "allowed", "POST", "/users", {"json": {"username": "lea.dubois", "password": "un mot de passe long",
                                                        "role": "officer", "regions": ["Occitanie"]}}, 201),
        ("users", "allowed", "GET", "/users", {}, 200),
        ("users", "forbidden", "POST", "/users/admin/disable", {}, 403),  # never its own account
    ],
}
USERNAMES = {"applicant": APPLICANT, "consultant": CONSULTANT, "officer": OFFICER, "head": HEAD, "finance": FINANCE,
             "auditor": AUDITOR, "admin": ADMIN}


def _fill(path: str, world: World) -> str:
    return path.format(ready=world.ready, paying=world.paying, fresh=world.fresh, naq=world.naq, session=world.session,
                       naq_session=world.naq_session, paying_document=world.paying_document)


@pytest.mark.parametrize("role", list(MATRIX))
def test_each_role_may_do_its_part_and_nothing_else(role, world, sign_in):
    user = sign_in(USERNAMES[role])
    failures = []
    for resource, kind, method, path, kwargs, expected in MATRIX[role]:
        url = _fill(path, world)
        r = user.get(url) if method == "GET" else user.post(url, **kwargs)
        if r.status_code != expected:
            failures.append(f"{resource} ({kind}) {method} {url}: {r.status_code} ≠ {expected} — {r.text[:200]}")
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
    assert not failures, "\n".join(failures)


def test_the_matrix_gives_every_role_an_allowed_and_a_forbidden_action_on_the_resources_it_uses():
    for role, cases in MATRIX.items():
        kinds_by_resource: dict[str, set] = {}
        for resource, kind, *_ in cases:
            kinds_by_resource.setdefault(resource, set()).add(kind)
        assert any(k == {"allowed", "forbidden"} for k in kinds_by_resource.values()), role
        assert {"programmes", "dossiers", "commands", "documents", "events", "users"} <= set(kinds_by_resource), role


def test_the_head_votes_the_session_but_a_dossier_of_another_region_in_the_batch_is_not_found(world, sign_in):
    head = sign_in(HEAD)
    r = head.post(f"/council-sessions/{world.session}/votes", json={"votes": [
        {"dossier_id": world.ready, "outcome": "approved", "deliberation": "CP/2021-04/18"},
        {"dossier_id": world.naq, "outcome": "approved", "deliberation": "CP/2021-04/19"}]})
    assert r.status_code == 200
    results = {x["dossier_id"]: x for x in r.json()["results"]}
    assert results[world.ready]["ok"] and results[world.ready]["state"] == "approved"
    assert results[world.naq]["status"] == 404 and results[world.naq]["refused"]["rule"] == "not_found"


# Every route that takes a dossier, with a request that would be valid for it.
DOSSIER_ROUTES = [
    ("GET", "/dossiers/{id}", {}),
    ("GET", "/dossiers/{id}/events", {}),
    ("GET", "/dossiers/{id}/documents", {}),
    ("GET", "/dossiers/{id}/documents/1", {}),
    ("GET", "/dossiers/{id}/documents/1/content", {}),
    ("GET", "/dossiers/{id}/payment-claims", {}),
    ("POST", "/dossiers/{id}/commands/take_for_review", {}),
    ("POST", "/dossiers/{id}/commands/request_documents", {"json": {"kinds": ["rib"]}}),
    ("POST", "/dossiers/{id}/commands/declare_ineligible", {"json": {"reason": "Hors champ."}}),
    ("POST", "/dossiers/{id}/commands/review_document", {"json": {"document_id": 1, "decision": "accepted"}}),
]


def _without_instance(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "instance"}


def test_another_regions_dossier_answers_404_exactly_like_a_dossier_that_does_not_exist(world, sign_in, uow_factory):
    naq_officer = sign_in(OFFICER_NAQ)
    before = counts(uow_factory)
    for method, path, kwargs in DOSSIER_ROUTES:
        answers = []
        for dossier_id in (world.fresh, 999_999):
            url = path.format(id=dossier_id)
            r = naq_officer.get(url) if method == "GET" else naq_officer.post(url, **kwargs)
            answers.append((r.status_code, _without_instance(r.json())))
        assert answers[0][0] == 404, (path, answers[0])
        assert answers[0] == answers[1], path
    assert counts(uow_factory) == before
    # …while its own region's dossier is there for it.
    assert naq_officer.get(f"/dossiers/{world.naq}").status_code == 200


def test_another_companys_dossier_is_not_found_for_an_applicant_even_in_listings(world, sign_in):
    garonne = sign_in(APPLICANT)
    listed = {d["id"] for d in garonne.get("/dossiers").json()["items"]}
    assert listed == {world.ready, world.paying, world.fresh}
    assert garonne.get(f"/dossiers/{world.naq}").status_code == 404
    assert garonne.command(world.naq, "withdraw", {"reason": "Essai."}).status_code == 404


def test_an_officer_lists_only_its_regions_dossiers(world, sign_in):
    occitanie = {d["id"] for d in sign_in(OFFICER).get("/dossiers").json()["items"]}
    aquitaine = {d["id"] for d in sign_in(OFFICER_NAQ).get("/dossiers").json()["items"]}
    assert occitanie == {world.ready, world.paying, world.fresh}
    assert aquitaine == {world.naq}


def api_routes(app):
    """Every API route of the app, with its full path (FastAPI ≥ 0.150 nests included routers)."""
    return [ctx for ctx in iter_route_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]


def _example_request(route, method: str, app) -> dict:
    """A plausible request for a route: its documented body example, a real PDF for uploads
    (none for a route left out of the document, such as the unknown-command answer)."""
    if route.path_format not in app.openapi()["paths"]:
        return {}
    operation = app.openapi()["paths"][route.path_format][method.lower()]
    content = (operation.get("requestBody") or {}).get("content", {})
    if "multipart/form-data" in content:
        return {"data": {"kind": "invoice"}, "files": {"file": ("facture.pdf", PDF, "application/pdf")}}
    if "application/x-www-form-urlencoded" in content:
        return {"data": content["application/x-www-form-urlencoded"].get("example", {})}
    if "application/json" in content:
        return {"json": content["application/json"].get("example", {})}
    return {}


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def test_an_auditor_cannot_change_anything_through_any_route(app, world, sign_in, uow_factory):
    auditor = sign_in(AUDITOR)
    before = counts(uow_factory)
    tried = []
    values = {"dossier_id": world.paying, "code": world.session, "username": AUDITOR}
    for route in api_routes(app):
        if not (route.methods & WRITE_METHODS) or route.path_format == "/auth/token":  # signing in changes nothing
            continue
        url = re.sub(r"\{(\w+)\}", lambda mt: str(values.get(mt.group(1), 1)), route.path_format)
        for method in sorted(route.methods & WRITE_METHODS):
            r = auditor.client.request(method, url, headers={**auditor.headers, "Idempotency-Key": f"audit-{url}"},
                                       **_example_request(route, method, app))
            tried.append(url)
            assert r.status_code == 403, (method, url, r.status_code, r.text[:200])
            assert r.json()["rule"] == "not_allowed"
    assert len(tried) >= 19
    assert counts(uow_factory) == before
    # The account itself is untouched: still active, still able to read.
    assert auditor.get("/me").json()["active"] is True
