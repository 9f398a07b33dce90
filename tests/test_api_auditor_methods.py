"""What docs/api.md says an auditor gets when it tries to write: 403 on every write route (they
are all POST), and for PUT/PATCH/DELETE — which no route of the API declares — the router's
answer, 405 on an existing path and 404 on an unknown one, before any authentication."""
from __future__ import annotations

from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import AUDITOR, counts
from fastapi.routing import APIRoute, iter_route_contexts


def test_put_patch_delete_answer_405_or_404_for_an_auditor_as_for_anyone(app, world, sign_in, uow_factory):
    routes = [ctx for ctx in iter_route_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]
    assert not [r.path_format for r in routes if r.methods & {"PUT", "PATCH", "DELETE"}]
    auditor = sign_in(AUDITOR)
    before = counts(uow_factory)
    existing = [f"/dossiers/{world.paying}", "/dossiers", f"/dossiers/{world.paying}/commands/pay", "/users",
                f"/dossiers/{world.paying}/documents", f"/council-sessions/{world.session}/votes"]
    for method in ("PUT", "PATCH", "DELETE"):
        for path in existing:
            r = auditor.client.request(method, path, headers=auditor.headers)
            assert r.status_code == 405, (method, path, r.status_code)
            assert auditor.client.request(method, path).status_code == 405  # no token: the same answer
        r = auditor.client.request(method, "/no/such/route", headers=auditor.headers)
        assert r.status_code == 404 and r.json()["rule"] == "not_found"
    # A write route (POST) is refused as such.
    r = auditor.post(f"/dossiers/{world.paying}/commands/pay", json={})
    assert r.status_code == 403 and r.json()["rule"] == "not_allowed"
    assert counts(uow_factory) == before
