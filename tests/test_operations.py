"""Operations (docs/operations.md): Prometheus metrics at /metrics, the request id from the
client's header to the response, the log line and the event row, JSON log lines without
secrets, liveness apart from readiness."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from api_support import *  # noqa: F401,F403
from api_support import APPLICANT, GARONNE, OFFICER, SECRET, submit
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text, update
from sweep_support import dossiers_with_open_request

from api.app import create_app
from db import models as m
from db.engine import make_engine
from db.migrate import upgrade
from services import telemetry
from services.audit.verify import verify_dossier
from services.storage import InMemoryStorage
from services.sweep import sweep_part
from services.uow import unit_of_work_factory
from services.users import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("USINE_TEST_POSTGRES_URL")


def scrape(client) -> dict:
    """Every sample of /metrics, parsed as Prometheus parses it: {(name, labels): value}."""
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def json_lines():
    """Usine's JSON log lines of the test, as the API writes them on stderr."""
    stream = io.StringIO()
    handler = telemetry.add_json_handler("usine", "api", level="INFO", stream=stream)
    logger = logging.getLogger("usine")
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_a_command_moves_its_counter_and_its_routes_request_counter_in_the_prometheus_text(client, sign_in):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    route = "/dossiers/{dossier_id}/commands/take_for_review"
    before = scrape(client)
    officer.ok(d, "take_for_review")
    refused = officer.command(d, "take_for_review")  # already under review: the state forbids it
    assert refused.status_code == 409 and refused.json()["rule"] == "not_allowed"
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("usine_commands_total", command="take_for_review", outcome="ok", rule="") == 1
    assert moved("usine_commands_total", command="take_for_review", outcome="refused", rule="not_allowed") == 1
    assert moved("usine_http_requests_total", method="POST", route=route, status="200") == 1
    assert moved("usine_http_requests_total", method="POST", route=route, status="409") == 1
    assert moved("usine_http_request_duration_seconds_count", method="POST", route=route) == 2
    # the route's template, never the dossier's id: one series for every dossier
    assert not any(f"/dossiers/{d}/" in dict(labels).get("route", "") for _, labels in after)


def test_a_stale_version_counts_as_a_conflict_and_a_reused_idempotency_key_as_an_idempotency_conflict(client, sign_in):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    before = scrape(client)
    stale = officer.command(d, "take_for_review", headers={"If-Match": '"99"'})
    assert stale.status_code == 409 and stale.json()["rule"] == "conflict"
    officer.ok(d, "take_for_review")
    key = {"Idempotency-Key": f"ops-{uuid.uuid4().hex}"}
    assert officer.command(d, "request_documents", {"kinds": ["kbis"]}, headers=key).status_code == 200
    reused = officer.command(d, "request_documents", {"kinds": ["rib"]}, headers=key)
    assert reused.status_code == 422 and reused.json()["rule"] == "idempotency_key_reused"
    after = scrape(client)
    assert value(after, "usine_commands_total", command="take_for_review", outcome="conflict", rule="conflict") \
        - value(before, "usine_commands_total", command="take_for_review", outcome="conflict", rule="conflict") == 1
    assert value(after, "usine_idempotency_conflicts_total", rule="idempotency_key_reused") \
        - value(before, "usine_idempotency_conflicts_total", rule="idempotency_key_reused") == 1


def test_the_outbox_depth_and_the_age_of_its_oldest_message_are_read_at_scrape_time(client, sign_in, clock,
                                                                                     uow_factory):
    submit(sign_in(APPLICANT), GARONNE)  # the acknowledgement of receipt is queued
    clock.advance(hours=2)
    samples = scrape(client)
    with uow_factory() as uow:
        queued = uow.session.scalar(select(m.Notification.id).where(m.Notification.status == "queued").limit(1))
    assert queued is not None
    assert value(samples, "usine_database_up") == 1
    assert value(samples, "usine_outbox_messages", status="queued") >= 1
    assert value(samples, "usine_outbox_oldest_queued_age_seconds") >= 2 * 3600


def test_the_request_id_given_by_the_client_is_echoed_logged_and_stored_on_the_event(client, sign_in, uow_factory,
                                                                                    json_lines):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    request_id = f"guichet-{uuid.uuid4()}"
    r = officer.command(d, "take_for_review", headers={"X-Request-ID": request_id})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == request_id
    access = [line for line in json_lines() if line.get("logger") == "usine.access" and line["request_id"] == request_id]
    assert len(access) == 1
    assert access[0]["route"] == "/dossiers/{dossier_id}/commands/take_for_review"
    assert access[0]["status"] == 200 and access[0]["command"] == "take_for_review"
    assert access[0]["level"] == "INFO" and access[0]["service"] == "api" and "time" in access[0]
    with uow_factory() as uow:
        stored = uow.session.scalars(select(m.Event.request_id).where(m.Event.dossier_id == d,
                                                                      m.Event.command == "take_for_review")).one()
    assert stored == request_id


def test_a_request_without_a_well_formed_request_id_gets_a_new_one_of_its_own(client):
    ids = set()
    for given in (None, "", "a b", "x" * 129, "<script>", "é"):
        headers = {"X-Request-ID": given.encode("utf-8")} if given is not None else {}
        r = client.get("/health/live", headers=headers)
        assert r.status_code == 200
        assert r.headers["x-request-id"] != given and telemetry.well_formed(r.headers["x-request-id"])
        ids.add(r.headers["x-request-id"])
    assert len(ids) == 6


def test_the_events_request_id_is_outside_the_hash_so_the_chain_still_verifies_whatever_it_holds(
        client, sign_in, uow_factory):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    officer.ok(d, "take_for_review")
    with uow_factory() as uow:
        assert verify_dossier(uow.session, d).ok
        uow.session.execute(update(m.Event).where(m.Event.dossier_id == d).values(request_id="modifié-après-coup"))
        uow.commit()
    with uow_factory() as uow:
        assert verify_dossier(uow.session, d).ok


def test_no_log_line_holds_a_password_or_a_token(client, json_lines):
    r = client.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD})
    assert r.status_code == 200
    token = r.json()["access_token"]
    client.get("/dossiers", headers={"Authorization": f"Bearer {token}"})
    client.post("/auth/token", data={"username": OFFICER, "password": "mauvais-mot-de-passe"})
    log = logging.getLogger("usine.api")
    log.warning("échec avec Authorization: Bearer %s", token, extra={"password": DEMO_PASSWORD, "token": token})
    written = json.dumps(json_lines(), ensure_ascii=False)
    assert json_lines(), "the requests were logged"
    for secret in (DEMO_PASSWORD, token, "mauvais-mot-de-passe"):
        assert secret not in written
    assert telemetry.MASK in written


def test_liveness_answers_while_the_database_is_down_and_readiness_says_503(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("USINE_WEB", "0")
    # Down: a PostgreSQL port where nothing listens, or a SQLite "file" that is a directory.
    url = "postgresql+psycopg://postgres@127.0.0.1:18599/usine" if POSTGRES_URL else f"sqlite:///{tmp_path}"
    factory = unit_of_work_factory(url, storage=InMemoryStorage())
    try:
        app = create_app(uow_factory=factory, clock=clock, secret_key=SECRET)
        with TestClient(app) as c:
            assert c.get("/health/live").status_code == 200
            r = c.get("/health/ready")
            assert r.status_code == 503
            assert r.json()["rule"] == "not_ready" and r.json()["field"] == "database"
            assert r.json()["checks"]["database"] == "unavailable"
            samples = scrape(c)
            assert value(samples, "usine_database_up") == 0
    finally:
        factory.engine.dispose()


@pytest.fixture
def migrated_url(tmp_path):
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"usine_ops_ready_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_readiness_needs_the_migrations_at_their_heads(migrated_url, clock, monkeypatch):
    monkeypatch.setenv("USINE_WEB", "0")
    upgrade(migrated_url)
    factory = unit_of_work_factory(migrated_url, storage=InMemoryStorage())
    try:
        with TestClient(create_app(uow_factory=factory, clock=clock, secret_key=SECRET)) as c:
            r = c.get("/health/ready")
            assert r.status_code == 200, r.text
            assert r.json()["migrations"] == "ok"
            with factory.engine.begin() as conn:  # as if the last migration had not run
                conn.execute(text("UPDATE alembic_version SET version_num = '0120_portal'"))
            r = c.get("/health/ready")
            assert r.status_code == 503 and r.json()["field"] == "migrations"
            assert "usine db upgrade" in r.json()["detail"] and c.get("/health/live").status_code == 200
    finally:
        factory.engine.dispose()


def test_a_sweep_times_itself_and_stamps_its_events_and_log_line_with_one_id_of_its_own(uow_factory, clock, actors,
                                                                                       json_lines, client):
    [d] = dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-01T10:00:00+01:00")
    before = scrape(client)
    clock.set(datetime.fromisoformat("2021-04-06T06:00:00+02:00"))
    report = sweep_part("lapses", uow_factory=uow_factory, clock=clock)
    assert report.lapsed == 1
    after = scrape(client)
    assert value(after, "usine_sweep_duration_seconds_count", part="lapses") \
        - value(before, "usine_sweep_duration_seconds_count", part="lapses") == 1
    assert value(after, "usine_sweep_runs_total", part="lapses", outcome="ok") \
        - value(before, "usine_sweep_runs_total", part="lapses", outcome="ok") == 1
    [line] = [x for x in json_lines() if x.get("logger") == "usine.sweep"]
    assert line["part"] == "lapses" and line["lapsed"] == 1 and line["request_id"].startswith("sweep-")
    with uow_factory() as uow:
        command, stored = uow.session.execute(select(m.Event.command, m.Event.request_id)
                                              .where(m.Event.dossier_id == d).order_by(m.Event.seq.desc())).first()
    assert command == "lapse" and stored == line["request_id"]
    # Within a flow run (or a CLI invocation), the sweep keeps the id already bound.
    with telemetry.bound_request_id("flow-4a1c"):
        sweep_part("lapses", uow_factory=uow_factory, clock=clock)
    assert [x["request_id"] for x in json_lines() if x.get("logger") == "usine.sweep"][-1] == "flow-4a1c"


MULTIPROCESS_WORKER = """
import sys
from services import metrics
metrics.count_command("pay", 200)
metrics.HTTP_REQUESTS.labels("POST", "/dossiers/{dossier_id}/commands/pay", "200").inc()
if sys.argv[1] == "render":
    sys.stdout.write(metrics.render().decode())
"""


def test_with_several_processes_the_metrics_of_each_are_added_up(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_WORKER, "count"], env=env, check=True, cwd=ROOT)
    out = subprocess.run([sys.executable, "-c", MULTIPROCESS_WORKER, "render"], env=env, check=True, cwd=ROOT,
                         capture_output=True, text=True).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(out) for s in f.samples}
    assert value(samples, "usine_commands_total", command="pay", outcome="ok", rule="") == 3
    assert value(samples, "usine_http_requests_total", method="POST", route="/dossiers/{dossier_id}/commands/pay",
                 status="200") == 3


def test_an_unexpected_error_answers_500_with_the_request_id_that_its_log_line_carries(app, json_lines):
    def broken():
        raise RuntimeError("panne imprévue")

    app.add_api_route("/ops-test/broken", broken, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/ops-test/broken", headers={"X-Request-ID": "incident-42"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "incident-42"
    assert r.json()["detail"] == "Erreur interne : l'incident est journalisé."
    errors = [x for x in json_lines() if x["level"] == "ERROR"]
    assert errors and all(x["request_id"] == "incident-42" for x in errors)
    assert "panne imprévue" in errors[0]["exc_info"]
