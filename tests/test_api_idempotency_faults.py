"""Idempotency when it matters: the API killed mid-burst, a connection dropped as a commit is
acknowledged, the database's backends terminated during a burst. A key's answer is stored in the
very transaction of its command, so every retried key gets its one answer and every command is
applied exactly once (the events are counted); a command that committed never answers 503."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import APPLICANT, GARONNE, HEAD, OFFICER, SECRET, counts, submit
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from api.idempotency import fingerprint_of
from api.security import issue_token
from db import models as m
from db.engine import make_engine
from db.models_auth import IdempotencyKey
from services.users import seed_demo_users
from tests.conftest import POSTGRES_URL
from tests.smtp_sink import free_port

ROOT = Path(__file__).resolve().parents[1]
CANDIDACY = {"programme": "occitanie-prif", "company": GARONNE}


# -- faults at the commit, in process --------------------------------------------------------

class ProcessDied(Exception):
    """The API process ending right after the database acknowledged a commit: the client never
    hears back (the app answers 500 here; a killed process answers nothing)."""


@pytest.fixture
def fault_after_next_commit(monkeypatch):
    """Arm a fault raised by the next `Session.commit` of the app: after the commit went through
    (`after=True`) or instead of it (`after=False`)."""
    real_commit = OrmSession.commit
    armed: list = []

    def commit(self):
        if not armed:
            return real_commit(self)
        fault, after = armed.pop()
        if after:
            real_commit(self)
        raise fault

    monkeypatch.setattr(OrmSession, "commit", commit)

    def arm(fault: Exception, *, after: bool) -> None:
        armed.append((fault, after))

    return arm


def _lost_connection() -> OperationalError:
    return OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))


def _events(uow_factory, command: str) -> int:
    with uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(m.Event).where(m.Event.command == command))


def test_a_key_whose_command_committed_just_before_the_process_died_is_answered_on_retry_not_left_in_progress(
        app, sign_in, uow_factory, fault_after_next_commit):
    from fastapi.testclient import TestClient

    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    key = {**officer.headers, "Idempotency-Key": "instruction-apres-panne"}
    with TestClient(app, raise_server_exceptions=False) as c:
        fault_after_next_commit(ProcessDied(), after=True)
        assert c.post(f"/dossiers/{d}/commands/take_for_review", headers=key).status_code == 500
        retried = c.post(f"/dossiers/{d}/commands/take_for_review", headers=key)
        again = c.post(f"/dossiers/{d}/commands/take_for_review", headers=key)
    assert retried.status_code == 200, retried.text
    assert retried.headers["idempotent-replayed"] == "true" and retried.json()["state"] == "eligibility_review"
    assert again.json() == retried.json()
    assert _events(uow_factory, "take_for_review") == 1


def test_a_connection_lost_as_the_commit_is_acknowledged_answers_the_committed_result_never_503(
        sign_in, uow_factory, fault_after_next_commit):
    officer = sign_in(OFFICER)
    keyed, unkeyed = submit(sign_in(APPLICANT), GARONNE), submit(sign_in(APPLICANT), GARONNE)
    key = {"Idempotency-Key": "instruction-connexion-perdue"}
    fault_after_next_commit(_lost_connection(), after=True)
    first = officer.command(keyed, "take_for_review", headers=key)
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "eligibility_review" and first.headers["etag"] == f'"{first.json()["version"]}"'
    retried = officer.command(keyed, "take_for_review", headers=key)
    assert retried.json() == first.json() and retried.headers["idempotent-replayed"] == "true"
    # Without a key, the event the command appended tells that its commit went through.
    fault_after_next_commit(_lost_connection(), after=True)
    plain = officer.command(unkeyed, "take_for_review")
    assert plain.status_code == 200, plain.text
    assert plain.json()["state"] == "eligibility_review"
    assert _events(uow_factory, "take_for_review") == 2


def test_a_connection_lost_before_the_commit_answers_503_and_the_retry_with_its_key_applies_once(
        sign_in, uow_factory, fault_after_next_commit):
    applicant = sign_in(APPLICANT)
    key = {"Idempotency-Key": "candidature-coupee"}
    fault_after_next_commit(_lost_connection(), after=False)
    lost = applicant.post("/dossiers", json=CANDIDACY, headers=key)
    assert lost.status_code == 503 and lost.headers["retry-after"] == "1"
    assert counts(uow_factory)["dossiers"] == 0
    retried = applicant.post("/dossiers", json=CANDIDACY, headers=key)
    replayed = applicant.post("/dossiers", json=CANDIDACY, headers=key)
    assert retried.status_code == replayed.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert replayed.json() == retried.json()
    assert counts(uow_factory)["dossiers"] == 1 and _events(uow_factory, "submit_candidacy") == 1


def test_a_bulk_vote_cut_short_by_a_crash_is_completed_on_retry_each_vote_applied_once(
        app, sign_in, clock, uow_factory, fault_after_next_commit):
    from fastapi.testclient import TestClient
    from test_api_council import _two_proposed

    a, b, _ = _two_proposed(sign_in, clock)
    head = sign_in(HEAD)
    votes = {"votes": [{"dossier_id": a, "outcome": "approved", "deliberation": "CP/2021-04/17"},
                       {"dossier_id": b, "outcome": "adjourned"}]}
    events = counts(uow_factory)["events"]
    key = {**head.headers, "Idempotency-Key": "seance-CP-2021-04-panne"}
    with TestClient(app, raise_server_exceptions=False) as c:
        fault_after_next_commit(ProcessDied(), after=True)  # dies once the first vote committed
        assert c.post("/council-sessions/CP-2021-04/votes", json=votes, headers=key).status_code == 500
        assert counts(uow_factory)["events"] == events + 1
        retried = c.post("/council-sessions/CP-2021-04/votes", json=votes, headers=key)
        again = c.post("/council-sessions/CP-2021-04/votes", json=votes, headers=key)
    assert retried.status_code == 200, retried.text
    assert retried.json()["applied"] == 2
    assert [r["state"] for r in retried.json()["results"]] == ["approved", "ready_for_vote"]
    assert again.json() == retried.json() and again.headers["idempotent-replayed"] == "true"
    assert counts(uow_factory)["events"] == events + 2


def test_a_bulk_request_for_pieces_cut_short_by_a_crash_is_completed_on_retry_each_dossier_asked_once(
        app, sign_in, clock, uow_factory, fault_after_next_commit):
    from fastapi.testclient import TestClient

    applicant = sign_in(APPLICANT)
    a, b = submit(applicant, GARONNE), submit(applicant, GARONNE)
    officer = sign_in(OFFICER)
    ask = {"action": "request_documents", "dossiers": [a, b], "kinds": ["kbis"]}
    key = {**officer.headers, "Idempotency-Key": "pieces-kbis-panne"}
    requests = _events(uow_factory, "request_documents")
    with TestClient(app, raise_server_exceptions=False) as c:
        fault_after_next_commit(ProcessDied(), after=True)  # dies once the first dossier committed
        assert c.post("/dossiers/bulk", json=ask, headers=key).status_code == 500
        assert _events(uow_factory, "request_documents") == requests + 1
        retried = c.post("/dossiers/bulk", json=ask, headers=key)
        again = c.post("/dossiers/bulk", json=ask, headers=key)
        other = c.post("/dossiers/bulk", json={**ask, "kinds": ["rib"]}, headers=key)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["done"], retried.json()["refused"]) == (2, 0)
    assert again.json() == retried.json() and again.headers["idempotent-replayed"] == "true"
    assert _events(uow_factory, "request_documents") == requests + 2  # each dossier asked once
    assert other.status_code == 422 and other.json()["rule"] == "idempotency_key_reused"


def test_a_key_an_earlier_version_left_without_its_answer_gets_a_final_answer_not_in_progress(
        sign_in, uow_factory, clock):
    officer = sign_in(OFFICER)
    d = submit(sign_in(APPLICANT), GARONNE)
    with uow_factory() as uow:  # what a crash between the old two transactions left
        uow.session.add(IdempotencyKey(key="ancienne-cle", username=OFFICER, route=f"POST /dossiers/{d}/commands/take_for_review",
                                       fingerprint=fingerprint_of({"command": "take_for_review", "body": {}}, None),
                                       created_at=clock.now()))
        uow.commit()
    events = counts(uow_factory)["events"]
    r = officer.command(d, "take_for_review", headers={"Idempotency-Key": "ancienne-cle"})
    assert r.status_code == 409 and r.json()["rule"] == "idempotency_answer_lost", r.text
    assert "retry-after" not in r.headers and "nouvelle clé" in r.json()["detail"]
    assert counts(uow_factory)["events"] == events


# -- a real API process, killed or cut off from its database mid-burst --------------------------

class Api:
    """`python -m api.server` on the test database, one worker (what `usine api` runs)."""

    def __init__(self, database_url: str, var_dir: Path):
        self.database_url, self.var_dir = database_url, var_dir
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "Api":
        self.port = free_port()
        env = {**os.environ, "USINE_DATABASE_URL": self.database_url, "USINE_SECRET_KEY": SECRET,
               "USINE_VAR_DIR": str(self.var_dir), "USINE_STORAGE_DIR": str(self.var_dir / "documents"),
               "USINE_CLOCK_START": "2021-02-01T10:00:00+01:00", "USINE_WEB": "0",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.server", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1]
            try:
                if self.request("GET", "/health", headers={})[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the API did not start within 60 s")

    def request(self, method: str, path: str, *, headers: dict, body: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = json.dumps(body) if body is not None else None
            conn.request(method, path, body=payload, headers={**headers, "Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, (json.loads(data) if data else None)
        finally:
            conn.close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def api(database_url, uow_factory, clock, fast_passwords, tmp_path):
    seed_demo_users(uow_factory, clock)
    server = Api(database_url, tmp_path / "var")
    yield server
    server.stop()


def _bearer(username: str, role: str) -> dict:
    return {"Authorization": f"Bearer {issue_token(SECRET, username=username, role=role)}"}


def _burst_requests(uow_factory, clock, count: int) -> list[tuple[str, str, dict | None, dict]]:
    """`count` candidacies and `count` dossiers taken for review, each request under its own key."""
    from services import commands
    from services.users import load_actor

    applicant = load_actor(uow_factory, APPLICANT)
    dossiers = []
    for _ in range(count):
        with uow_factory() as uow:
            dossiers.append(commands.submit_candidacy(uow=uow, clock=clock, actor=applicant,
                                                      programme_id="occitanie-prif", company=GARONNE).dossier_id)
    as_applicant, as_officer = _bearer(APPLICANT, "applicant"), _bearer(OFFICER, "officer")
    requests = []
    for i, d in enumerate(dossiers):
        requests.append((f"candidature-{i}", "/dossiers", CANDIDACY, as_applicant))
        requests.append((f"instruction-{i}", f"/dossiers/{d}/commands/take_for_review", None, as_officer))
    return requests


def _send(api: Api, request) -> tuple[int, dict, dict | None] | None:
    key, path, body, headers = request
    try:
        return api.request("POST", path, headers={**headers, "Idempotency-Key": key}, body=body)
    except (OSError, http.client.HTTPException):
        return None  # the process died with the request in flight: no answer


def _burst(api: Api, requests, *, strike_after: tuple[int, ...], fault) -> dict:
    """Send every request (6 at a time); strike with `fault()` once the number of answers reaches
    each of `strike_after`."""
    answers: dict = {}
    lock = threading.Lock()
    pending = list(strike_after)

    def one(request):
        answer = _send(api, request)
        with lock:
            answers[request[0]] = answer
            strike = bool(pending) and sum(a is not None for a in answers.values()) >= pending[0]
            if strike:
                pending.pop(0)
            if strike:
                fault()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(one, requests))
    assert not pending or pending[0] > len(requests)
    return answers


def _check_every_key_gets_its_one_answer(api: Api, requests, first: dict, uow_factory, count: int) -> None:
    retried = {request[0]: _send(api, request) for request in requests}
    for key, answer in retried.items():
        assert answer is not None and answer[0] in (200, 201), (key, answer)
        before = first.get(key)
        if before is not None and before[0] in (200, 201):
            assert answer[2] == before[2], key  # the answer it got before, replayed
        if before is not None and before[0] == 503:
            # A 503 says the command did not commit: its retry applies it, it is no replay.
            assert "idempotent-replayed" not in answer[1], (key, before)
    created = [retried[f"candidature-{i}"][2]["dossier_id"] for i in range(count)]
    assert len(set(created)) == count
    with uow_factory() as uow:
        s = uow.session
        by_command = dict(s.execute(select(m.Event.command, func.count()).group_by(m.Event.command)).all())
        assert by_command == {"submit_candidacy": 2 * count, "take_for_review": count}
        assert s.scalar(select(func.count()).select_from(m.Dossier)) == 2 * count
        assert set(s.scalars(select(m.Dossier.status).where(m.Dossier.id.notin_(created)))) == {"eligibility_review"}
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)
                        .where(IdempotencyKey.status_code.is_(None))) == 0


def test_the_api_killed_mid_burst_leaves_every_key_with_one_answer_and_every_command_applied_once(
        api, uow_factory, clock):
    count = 12
    requests = _burst_requests(uow_factory, clock, count)
    api.start()
    first = _burst(api, requests, strike_after=(6,), fault=api.kill)
    assert any(a is None for a in first.values())  # requests were in flight when it died
    api.start()
    _check_every_key_gets_its_one_answer(api, requests, first, uow_factory, count)


@pytest.mark.skipif(not POSTGRES_URL, reason="terminates PostgreSQL backends (PostgreSQL suite)")
def test_database_backends_terminated_mid_burst_leave_every_key_with_one_answer(api, uow_factory, clock,
                                                                                 postgres_engine):
    count = 12
    requests = _burst_requests(uow_factory, clock, count)
    uow_factory.engine.dispose()
    api.start()
    admin = make_engine(api.database_url)

    def terminate():
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.commit()

    try:
        first = _burst(api, requests, strike_after=(4, 10, 16), fault=terminate)
    finally:
        admin.dispose()
    postgres_engine.dispose()  # the harness's own connections were dropped too
    uow_factory.engine.dispose()
    assert all(a is not None for a in first.values())  # the API itself stayed up
    assert {a[0] for a in first.values()} <= {200, 201, 503}
    _check_every_key_gets_its_one_answer(api, requests, first, uow_factory, count)
