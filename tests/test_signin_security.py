"""Holding under attack (docs/security.md): a flood of sign-ins neither stalls the other routes nor
gets more than a few password checks at once; an identifier that keeps failing is delayed then
locked, whether it is an account or not, across processes; an address that keeps trying is
refused; and a password change, a disable, a sign-out end every earlier token and web session."""
from __future__ import annotations

import asyncio
import re
import threading

import httpx
import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import ADMIN, OFFICER, SECRET, Session
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from services.signin import SigninGate, SigninPolicy
from services.users import DEMO_PASSWORD, seed_demo_users

NEW_PASSWORD = "un tout nouveau mot de passe"
# A test policy: the defaults, without the per-address window (tests all come from one address)
# and without holding refusals (the tests ask one after the other).
OPEN_ADDRESS = SigninPolicy(per_address="100000/minute", refusal_delay_seconds=0)


def _app(uow_factory, clock, policy: SigninPolicy = OPEN_ADDRESS):
    return create_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET, signin_policy=policy)


@pytest.fixture
def open_app(uow_factory, clock, fast_passwords):
    seed_demo_users(uow_factory, clock)
    return _app(uow_factory, clock)


@pytest.fixture
def open_client(open_app):
    with TestClient(open_app, follow_redirects=False) as c:
        yield c


def _token(client, username=OFFICER, password=DEMO_PASSWORD):
    r = client.post("/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _web_sign_in(app, username=OFFICER, password=DEMO_PASSWORD) -> TestClient:
    browser = TestClient(app, follow_redirects=False)
    page = browser.get("/ui/login")
    r = browser.post("/ui/login", data={"username": username, "password": password, "csrf_token": _csrf(page.text)})
    assert r.status_code == 303, r.text
    assert browser.get("/ui/dossiers").status_code == 200
    return browser


def _signed_out(browser: TestClient) -> bool:
    r = browser.get("/ui/dossiers")
    return r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def _answer(r) -> tuple:
    return r.status_code, r.text, r.headers.get("retry-after")


# -- a flood -----------------------------------------------------------------------------------

def test_a_flood_of_wrong_sign_ins_gets_429_beyond_the_checks_in_progress_while_an_officer_still_reads(
        uow_factory, clock, fast_passwords, monkeypatch):
    """50 sign-ins at once while the password checks are held: one is checked, two wait, the
    others are answered 429 with Retry-After at once, and an officer's read is served meanwhile
    (before, every argon2 check took a thread of the pool the other routes need)."""
    seed_demo_users(uow_factory, clock)
    app = _app(uow_factory, clock, SigninPolicy(per_address="100000/minute", concurrency=1, max_waiting=2,
                                                queue_wait_seconds=60, refusal_delay_seconds=0))
    with TestClient(app) as c:
        officer = _token(c)
    release, checking = threading.Event(), threading.Event()
    verify = SigninGate._verify

    def held(self, stored_hash, password):
        checking.set()
        release.wait(60)
        return verify(self, stored_hash, password)

    monkeypatch.setattr(SigninGate, "_verify", held)

    async def flood():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://usine.test") as http:
            attempts = [asyncio.create_task(http.post("/auth/token", data={"username": f"intrus.{i}",
                                                                           "password": "pas le bon mot de passe"}))
                        for i in range(50)]
            while not checking.is_set():
                await asyncio.sleep(0.01)
            while sum(t.done() for t in attempts) < 47:
                await asyncio.sleep(0.01)
            early = [t.result() for t in attempts if t.done()]
            read = await asyncio.wait_for(http.get("/dossiers", headers=officer), timeout=30)
            release.set()
            return early, read, await asyncio.gather(*attempts)

    try:
        early, read, answers = asyncio.run(flood())
    finally:
        release.set()
    assert read.status_code == 200
    assert len(early) == 47 and {r.status_code for r in early} == {429}
    for r in early:
        assert r.headers["retry-after"] == "1"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["rule"] == "signin_busy" and "réessayez" in r.json()["detail"]
    assert sorted(r.status_code for r in answers) == [400] * 3 + [429] * 47


def test_an_address_that_keeps_trying_is_refused_even_with_the_right_password(uow_factory, clock, fast_passwords):
    seed_demo_users(uow_factory, clock)
    with TestClient(_app(uow_factory, clock, SigninPolicy(per_address="3/minute", refusal_delay_seconds=0))) as c:
        for name in ("a.b", "c.d", "e.f"):
            assert c.post("/auth/token", data={"username": name, "password": "mauvais mot"}).status_code == 400
        r = c.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD})
    assert r.status_code == 429 and r.json()["rule"] == "signin_rate_limited"
    assert "depuis cette adresse" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1


# -- an identifier that keeps failing ----------------------------------------------------------

def _sixty_wrong_then_right(client, clock, username: str, password: str) -> list[tuple]:
    """60 wrong passwords a minute apart, then the right one."""
    answers = []
    for i in range(60):
        answers.append(_answer(client.post("/auth/token", data={"username": username, "password": f"essai numéro {i}"})))
        clock.advance(minutes=1)
    answers.append(_answer(client.post("/auth/token", data={"username": username, "password": password})))
    return answers


def test_sixty_wrong_passwords_lock_the_account_and_then_the_right_one_is_refused_in_french(open_client, clock):
    answers = _sixty_wrong_then_right(open_client, clock, OFFICER, DEMO_PASSWORD)
    statuses = [a[0] for a in answers]
    assert statuses[:9] == [400] * 9 and statuses[9] == 429  # 5 free, 4 growing delays, then the lock
    assert statuses.count(400) <= 13  # the lock held: most attempts were never checked
    status, body, retry_after = answers[-1]
    assert status == 429 and int(retry_after) > 0
    problem = httpx.Response(200, text=body).json()
    assert problem["rule"] == "signin_locked"
    assert "Trop de tentatives de connexion infructueuses" in problem["detail"] and "réessayez dans" in problem["detail"]
    clock.advance(seconds=int(retry_after))
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 200
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": "encore faux"}).status_code == 400


def test_an_unknown_account_gets_exactly_the_answers_of_a_real_one(open_client, clock):
    known = _sixty_wrong_then_right(open_client, clock, OFFICER, DEMO_PASSWORD)
    clock.advance(hours=3)
    unknown = _sixty_wrong_then_right(open_client, clock, "agent.inconnu", DEMO_PASSWORD)
    assert unknown == known


def test_the_lock_holds_in_every_api_process(uow_factory, clock, fast_passwords):
    """Two apps over one database stand for two workers: the failures counted by one lock the other."""
    seed_demo_users(uow_factory, clock)
    with TestClient(_app(uow_factory, clock)) as first, TestClient(_app(uow_factory, clock)) as second:
        for i in range(10):
            first.post("/auth/token", data={"username": OFFICER, "password": f"mauvais {i}"})
            clock.advance(minutes=1)
        r = second.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD})
    assert r.status_code == 429 and r.json()["rule"] == "signin_locked"


def test_the_web_sign_in_counts_and_locks_like_the_api(open_app, open_client, clock):
    browser = TestClient(open_app, follow_redirects=False)
    for i in range(10):
        page = browser.get("/ui/login")
        r = browser.post("/ui/login", data={"username": OFFICER, "password": f"mauvais {i}", "csrf_token": _csrf(page.text)})
        clock.advance(minutes=1)
    page = browser.get("/ui/login")
    r = browser.post("/ui/login", data={"username": OFFICER, "password": DEMO_PASSWORD, "csrf_token": _csrf(page.text)})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Trop de tentatives de connexion infructueuses" in r.text and 'lang="fr"' in r.text
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 429


def test_an_admin_setting_a_new_password_unlocks_the_account(open_client, clock):
    admin = Session(open_client, clock, ADMIN)
    for i in range(10):
        open_client.post("/auth/token", data={"username": OFFICER, "password": f"mauvais {i}"})
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 429
    r = admin.post(f"/users/{OFFICER}/password", json={"password": NEW_PASSWORD})
    assert r.status_code == 200 and "password" not in r.json()
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": NEW_PASSWORD}).status_code == 200


# -- revocation --------------------------------------------------------------------------------

def test_a_password_change_ends_every_earlier_token_and_web_session(open_app, open_client, clock, world_ids):
    token = _token(open_client)
    assert open_client.get("/dossiers", headers=token).status_code == 200  # verified, and remembered
    browser = _web_sign_in(open_app)
    r = open_client.post("/me/password", headers=token,
                         json={"current_password": DEMO_PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    refused = open_client.get("/dossiers", headers=token)
    assert refused.status_code == 401 and "révoqué" in refused.json()["detail"]
    command = open_client.post(f"/dossiers/{world_ids}/commands/take_for_review", headers=token)
    assert command.status_code == 401
    assert _signed_out(browser)
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 400
    fresh = _token(open_client, password=NEW_PASSWORD)
    assert open_client.get("/dossiers", headers=fresh).status_code == 200


@pytest.fixture
def world_ids(open_client, clock):
    """One submitted Occitanie dossier (its id)."""
    from api_support import APPLICANT, GARONNE, submit

    return submit(Session(open_client, clock, APPLICANT), GARONNE)


def test_a_password_change_needs_the_current_password(open_client):
    token = _token(open_client)
    r = open_client.post("/me/password", headers=token,
                         json={"current_password": "pas le mien du tout", "new_password": NEW_PASSWORD})
    assert r.status_code == 400 and r.json()["field"] == "current_password"
    short = open_client.post("/me/password", headers=token, json={"current_password": DEMO_PASSWORD, "new_password": "court"})
    assert short.status_code == 422 and short.json()["rule"] == "password_policy"
    assert open_client.get("/me", headers=token).status_code == 200  # nothing changed


def test_signing_out_ends_the_session_cookie(open_app):
    browser = _web_sign_in(open_app)
    cookie = browser.cookies.get("usine_session")
    page = browser.get("/ui/dossiers")
    r = browser.post("/ui/logout", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 303
    browser.cookies.clear()
    browser.cookies.set("usine_session", cookie, path="/ui")  # the cookie kept from before the sign-out
    assert _signed_out(browser)


def test_signing_out_everywhere_from_the_api_ends_tokens_and_web_sessions(open_app, open_client):
    token, other = _token(open_client), _token(open_client)
    browser = _web_sign_in(open_app)
    assert open_client.post("/auth/logout", headers=token).status_code == 204
    assert open_client.get("/me", headers=other).status_code == 401
    assert _signed_out(browser)


def test_the_web_password_page_changes_it_keeps_this_browser_and_ends_the_others(open_app, open_client):
    here, elsewhere = _web_sign_in(open_app), _web_sign_in(open_app)
    token = _token(open_client)
    page = here.get("/ui/mot-de-passe")
    assert page.status_code == 200 and "Changer mon mot de passe" in page.text
    wrong = here.post("/ui/mot-de-passe", data={"csrf_token": _csrf(page.text), "current_password": "pas le mien du tout",
                                               "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert wrong.status_code == 400 and "Le mot de passe actuel est incorrect" in wrong.text
    mismatch = here.post("/ui/mot-de-passe", data={"csrf_token": _csrf(page.text), "current_password": DEMO_PASSWORD,
                                                  "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"})
    assert mismatch.status_code == 400 and "diffèrent" in mismatch.text
    done = here.post("/ui/mot-de-passe", data={"csrf_token": _csrf(page.text), "current_password": DEMO_PASSWORD,
                                              "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert done.status_code == 303
    assert here.get("/ui/dossiers").status_code == 200
    assert _signed_out(elsewhere)
    assert open_client.get("/me", headers=token).status_code == 401


def test_a_disabled_account_re_enabled_signs_in_again_but_its_earlier_tokens_and_sessions_stay_ended(
        open_app, open_client, clock):
    admin = Session(open_client, clock, ADMIN)
    token = _token(open_client)
    browser = _web_sign_in(open_app)
    assert admin.post(f"/users/{OFFICER}/disable").json()["active"] is False
    assert open_client.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 400
    enabled = admin.post(f"/users/{OFFICER}/enable")
    assert enabled.status_code == 200 and enabled.json()["active"] is True and enabled.json()["disabled_at"] is None
    assert open_client.get("/me", headers=token).status_code == 401
    assert _signed_out(browser)
    assert open_client.get("/me", headers=_token(open_client)).json()["username"] == OFFICER


def test_usine_users_passwd_asks_twice_in_french_and_ends_earlier_tokens_and_enable_brings_the_account_back(
        open_client, uow_factory, clock, monkeypatch):
    import cli.api
    from cli.main import app as cli_app
    from cli.main import register_extensions

    monkeypatch.setattr(cli.api, "_factory", lambda: uow_factory)
    monkeypatch.setattr(cli.api, "_clock", lambda: clock)
    register_extensions()
    runner = CliRunner()
    token = _token(open_client)
    changed = runner.invoke(cli_app, ["users", "passwd", OFFICER],
                            input=f"premier essai long\nautre chose encore\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert changed.exit_code == 0, changed.output
    assert "Confirmez le nouveau mot de passe" in changed.output and "Les deux saisies diffèrent" in changed.output
    assert "mot de passe changé" in changed.output
    assert open_client.get("/me", headers=token).status_code == 401
    assert runner.invoke(cli_app, ["users", "passwd", "personne"], input="x\n").exit_code == 1
    assert runner.invoke(cli_app, ["users", "disable", OFFICER]).exit_code == 0
    enabled = runner.invoke(cli_app, ["users", "enable", OFFICER])
    assert enabled.exit_code == 0 and "réactivé" in enabled.output
    assert open_client.get("/me", headers=_token(open_client, password=NEW_PASSWORD)).status_code == 200


def test_a_refusal_that_did_not_wait_is_held_before_it_is_answered(uow_factory, clock, fast_passwords, monkeypatch):
    """A client looping on its 429s would otherwise ask again at once, hundreds of times a second."""
    import services.signin

    held = []

    async def sleep(seconds):
        held.append(seconds)

    monkeypatch.setattr(services.signin.asyncio, "sleep", sleep)
    seed_demo_users(uow_factory, clock)
    with TestClient(_app(uow_factory, clock, SigninPolicy(per_address="1/minute", refusal_delay_seconds=3))) as c:
        assert c.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 200
        assert held == []
        assert c.post("/auth/token", data={"username": OFFICER, "password": DEMO_PASSWORD}).status_code == 429
    assert held == [3]
