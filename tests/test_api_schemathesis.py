"""The API against its own OpenAPI document (schemathesis, bounded examples): whatever request is
generated, valid or not, the answer is never a server error and never breaks the documented
status codes, content types, headers or response schemas.

Each operation is called as the role it is meant for (and dossier ids are often pointed at real
dossiers), so that generated bodies reach the services and not only the 403/404 gates."""
from __future__ import annotations

import pytest
import schemathesis
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import ADMIN, APPLICANT, AUDITOR, FINANCE, HEAD, OFFICER, SECRET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.routes_commands import COMMANDS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
USER_OF_ROLE = {"applicant": APPLICANT, "officer": OFFICER, "head": HEAD, "finance": FINANCE, "admin": ADMIN,
                "auditor": AUDITOR}


def user_for(method: str, path: str) -> str:
    """The demo user meant to call this operation."""
    if path.startswith(("/users", "/programmes/sync")):
        return ADMIN
    if path.startswith("/audit"):
        return AUDITOR
    if "/commands/" in path:
        return USER_OF_ROLE[COMMANDS[path.rsplit("/", 1)[-1]].roles[0]]
    if method == "POST" and (path == "/dossiers" or path.endswith(("/documents", "/aid-dossiers"))):
        return APPLICANT
    if path.endswith("/votes"):
        return HEAD
    return OFFICER


def _document_only_app():
    # The OpenAPI document does not depend on the database: it is read from an app on a
    # throw-away in-memory one; every call below goes to the test's own app and database.
    from api.app import create_app
    from services.clock import SystemClock
    from services.uow import unit_of_work_factory

    return create_app(uow_factory=unit_of_work_factory("sqlite://"), clock=SystemClock(), secret_key=SECRET)


schema = schemathesis.openapi.from_asgi("/openapi.json", _document_only_app())
# One test per operation, named after it: plain pytest parametrization keeps the test ids unique
# (xdist's `--dist loadgroup` would otherwise fold schemathesis' generated items into one).
OPERATIONS = sorted((r.ok().method.upper(), r.ok().path) for r in schema.get_all_operations())


@pytest.fixture
def sessions(world, sign_in):
    return {u: sign_in(u) for u in (ADMIN, APPLICANT, AUDITOR, FINANCE, HEAD, OFFICER)}


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_server_error_or_an_answer_outside_the_schema(method, path, app, world, sessions):
    operation = schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    session = sessions[user_for(method, path)]
    # Readiness answers 503 on the tests' database (its schema is built from the models: no
    # migration table), which is its documented answer there, not a server error.
    checks = [c for c in CHECKS if c is not not_a_server_error] if path == "/health/ready" else CHECKS

    @given(case=cases)
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case):
        path_parameters = case.path_parameters or {}
        if isinstance(path_parameters.get("dossier_id"), int) and path_parameters["dossier_id"] % 2 == 0:
            path_parameters["dossier_id"] = (world.ready, world.paying, world.fresh)[path_parameters["dossier_id"] % 3]
        case.call_and_validate(headers=session.headers, checks=checks, app=app)

    call()


def test_every_operation_of_the_app_is_exercised():
    assert len(OPERATIONS) >= 40
