"""Signing in: argon2-hashed passwords, signed expiring tokens, refused forgeries, disabled
accounts, the signing secret's file, the users' command line and the demo accounts."""
from __future__ import annotations

import base64
import json
import os
import stat
import time

import jwt
import pytest
from api_support import *  # noqa: F401,F403  (fixtures)
from api_support import ADMIN, APPLICANT, FINANCE, OFFICER, SECRET, Session
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.security import issue_token, load_or_create_secret
from db import models as m
from db.models_auth import ROLES, User
from services.users import DEMO_APPLICANT_SIRENS, DEMO_PASSWORD, DEMO_USERS, seed_demo_users


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_user_signs_in_and_gets_a_signed_token_that_expires_within_the_hour(client):
    r = client.post("/auth/token", data={"grant_type": "password", "username": OFFICER, "password": DEMO_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], issuer="usine")
    assert claims["sub"] == OFFICER and claims["role"] == "officer"
    assert claims["exp"] - claims["iat"] == 3600
    me = client.get("/me", headers=_bearer(body["access_token"])).json()
    assert me["regions"] == ["Occitanie"] and "password_hash" not in me


def test_a_wrong_password_an_unknown_user_and_a_disabled_account_get_the_same_refusal(client, sign_in):
    sign_in(ADMIN).post(f"/users/{APPLICANT}/disable")
    answers = [client.post("/auth/token", data={"username": u, "password": p})
               for u, p in ((OFFICER, "pas le bon mot de passe"), ("personne", DEMO_PASSWORD), (APPLICANT, DEMO_PASSWORD))]
    assert {r.status_code for r in answers} == {400}
    assert len({json.dumps(r.json(), sort_keys=True) for r in answers}) == 1
    assert answers[0].json()["rule"] == "invalid_grant"
    assert answers[0].headers["content-type"].startswith("application/problem+json")


def test_no_token_answers_401_with_a_bearer_challenge(client):
    r = client.get("/dossiers")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["rule"] == "unauthenticated"


def test_an_expired_token_is_refused(client):
    token = issue_token(SECRET, username=OFFICER, role="officer", ttl_seconds=3600, now=time.time() - 3601)
    r = client.get("/dossiers", headers=_bearer(token))
    assert r.status_code == 401
    assert "expiré" in r.json()["detail"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_a_token_that_was_valid_is_refused_once_it_expires(client, monkeypatch):
    """The API remembers the tokens it has verified: that memory must not outlive them."""
    import api.security

    token = issue_token(SECRET, username=OFFICER, role="officer", ttl_seconds=3600, now=time.time() - 3590)
    assert client.get("/dossiers", headers=_bearer(token)).status_code == 200
    assert client.get("/dossiers", headers=_bearer(token)).status_code == 200
    later = time.time() + 11
    monkeypatch.setattr(api.security.time, "time", lambda: later)
    r = client.get("/dossiers", headers=_bearer(token))
    assert r.status_code == 401 and "expiré" in r.json()["detail"]


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("forgery", ["other secret", "alg none", "edited claims", "garbage"])
def test_a_forged_token_is_refused(client, forgery):
    genuine = issue_token(SECRET, username=APPLICANT, role="applicant")
    now = int(time.time())
    claims = {"sub": ADMIN, "role": "admin", "iat": now, "exp": now + 600, "iss": "usine"}
    token = {
        "other secret": jwt.encode(claims, "un-autre-secret-" + "x" * 40, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "edited claims": ".".join([genuine.split(".")[0], _b64(claims), genuine.split(".")[2]]),
        "garbage": "abc.def.ghi",
    }[forgery]
    r = client.get("/users", headers=_bearer(token))
    assert r.status_code == 401
    assert r.json()["rule"] == "unauthenticated"


def test_a_disabled_accounts_tokens_stop_working_at_once(sign_in):
    officer = sign_in(OFFICER)
    assert officer.get("/dossiers").status_code == 200
    assert sign_in(ADMIN).post(f"/users/{OFFICER}/disable").json()["active"] is False
    assert officer.get("/dossiers").status_code == 401


def _set_role(uow_factory, username: str, role: str) -> None:
    with uow_factory() as uow:
        uow.session.scalar(select(User).where(User.username == username)).role = role
        uow.commit()


def _dossier_version_and_events(uow_factory, dossier_id: int) -> tuple[int, int]:
    with uow_factory() as uow:
        version = uow.session.get(m.Dossier, dossier_id).version
        events = uow.session.scalar(select(func.count()).select_from(m.Event).where(m.Event.dossier_id == dossier_id))
        return version, events


def test_a_disabled_account_cannot_send_a_command_and_the_dossier_is_untouched(sign_in, world, uow_factory):
    officer = sign_in(OFFICER)
    before = _dossier_version_and_events(uow_factory, world.fresh)
    sign_in(ADMIN).post(f"/users/{OFFICER}/disable")
    r = officer.command(world.fresh, "take_for_review", headers={"Idempotency-Key": "prise-1"})
    assert r.status_code == 401 and r.json()["rule"] == "unauthenticated"
    assert _dossier_version_and_events(uow_factory, world.fresh) == before


def test_a_role_changed_after_sign_in_governs_the_next_command_both_ways(sign_in, world, uow_factory):
    officer, finance = sign_in(OFFICER), sign_in(FINANCE)  # tokens issued for officer and finance
    _set_role(uow_factory, OFFICER, "finance")
    refused = officer.command(world.fresh, "take_for_review")
    assert refused.status_code == 403 and refused.json()["rule"] == "not_allowed"
    _set_role(uow_factory, FINANCE, "officer")  # its token still says « finance »
    taken = finance.command(world.fresh, "take_for_review")
    assert taken.status_code == 200, taken.text
    assert taken.json()["state"] == "eligibility_review"


def test_passwords_are_stored_as_argon2id_hashes_never_in_clear(app, uow_factory):
    with uow_factory() as uow:
        hashes = uow.session.scalars(select(User.password_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(DEMO_PASSWORD in h for h in hashes)


def test_an_admin_creates_a_user_whose_scope_must_fit_its_role(sign_in, client):
    admin = sign_in(ADMIN)
    refused = {
        "officer without region": ({"username": "x.officer", "role": "officer", "regions": []}, "regions", "invalid_input"),
        "unknown region": ({"username": "x.officer", "role": "officer", "regions": ["Bretagne"]}, "regions[0]", "invalid_input"),
        "applicant with a wrong SIREN": ({"username": "x.app", "role": "applicant", "siren": "732829321"}, "siren", "siren_checksum"),
        "consultant without its name": ({"username": "x.cons", "role": "consultant"}, "consultant", "invalid_input"),
        "short password": ({"username": "x.adm", "role": "admin", "password": "court"}, "password", "password_policy"),
        "taken username": ({"username": OFFICER, "role": "admin"}, "username", "username_taken"),
    }
    for case, (body, field, rule) in refused.items():
        r = admin.post("/users", json={"password": "un mot de passe long", **body})
        assert r.status_code == 422, case
        assert (r.json()["field"], r.json()["rule"]) == (field, rule), case
    r = admin.post("/users", json={"username": "lea.dubois", "password": "un mot de passe long", "role": "finance",
                                   "regions": ["Occitanie", "Pays de la Loire"], "display_name": "Léa Dubois"})
    assert r.status_code == 201 and r.headers["location"] == "/users/lea.dubois"
    assert "password" not in r.json()
    lea = Session(client, admin.clock, "lea.dubois", "un mot de passe long")
    assert lea.get("/me").json()["regions"] == ["Occitanie", "Pays de la Loire"]


def test_the_signing_secret_file_is_created_once_readable_by_the_service_only(tmp_path):
    first = load_or_create_secret(tmp_path)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 64 and load_or_create_secret(tmp_path) == first
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        load_or_create_secret(tmp_path)


def test_the_demo_has_one_account_per_role_with_the_documented_password(uow_factory, clock, fast_passwords):
    seeded = seed_demo_users(uow_factory, clock)
    assert {u["role"] for u in seeded} == set(ROLES)
    assert {u["password"] for u in seeded} == {DEMO_PASSWORD}
    officers = {u["username"]: u["regions"] for u in seeded if u["role"] == "officer"}
    assert officers == {"agent.occitanie": ["Occitanie"], "agent.nouvelle-aquitaine": ["Nouvelle-Aquitaine"],
                        "agent.pays-de-la-loire": ["Pays de la Loire"]}
    assert {u["siren"] for u in seeded if u["role"] == "applicant"} == set(DEMO_APPLICANT_SIRENS)
    again = seed_demo_users(uow_factory, clock)
    assert not any(u["created"] for u in again) and len(again) == len(DEMO_USERS)


def test_usine_users_add_list_and_disable_from_the_command_line(uow_factory, clock, fast_passwords, monkeypatch):
    import cli.api
    from cli.main import app as cli_app
    from cli.main import register_extensions

    monkeypatch.setattr(cli.api, "_factory", lambda: uow_factory)
    monkeypatch.setattr(cli.api, "_clock", lambda: clock)
    register_extensions()
    runner = CliRunner()
    added = runner.invoke(cli_app, ["users", "add", "paul.finance", "--role", "finance", "--region", "Occitanie",
                                    "--name", "Paul, service financier", "--password-stdin"],
                          input="un mot de passe long\n")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["regions"] == ["Occitanie"]
    refused = runner.invoke(cli_app, ["users", "add", "sans.region", "--role", "officer", "--password-stdin"],
                            input="un mot de passe long\n")
    assert refused.exit_code == 1
    listed = runner.invoke(cli_app, ["users", "list", "--json"])
    assert [u["username"] for u in json.loads(listed.output)] == ["paul.finance"]
    assert runner.invoke(cli_app, ["users", "disable", "paul.finance"]).exit_code == 0
    assert json.loads(runner.invoke(cli_app, ["users", "list", "--json"]).output)[0]["active"] is False
    shown = runner.invoke(cli_app, ["users", "list"]).output  # people read the role's name, not its key
    assert "service financier" in shown and "désactivé" in shown and " finance " not in shown
    assert runner.invoke(cli_app, ["users", "enable", "paul.finance"]).output.strip() == "paul.finance : réactivé"
    assert runner.invoke(cli_app, ["users", "enable", "personne"]).exit_code == 1


def test_usine_users_add_asks_the_password_twice_in_french_until_both_entries_agree(uow_factory, clock,
                                                                                      fast_passwords, monkeypatch):
    import cli.api
    from cli.main import app as cli_app
    from cli.main import register_extensions
    from services.users import authenticate

    monkeypatch.setattr(cli.api, "_factory", lambda: uow_factory)
    monkeypatch.setattr(cli.api, "_clock", lambda: clock)
    register_extensions()
    added = CliRunner().invoke(cli_app, ["users", "add", "lea.agent", "--role", "officer", "--region", "Occitanie"],
                               input="premier essai long\nautre chose encore\nle bon mot de passe\nle bon mot de passe\n")
    assert added.exit_code == 0, added.output
    assert "Confirmez le mot de passe" in added.output and "Les deux saisies diffèrent" in added.output
    assert "Repeat" not in added.output
    with uow_factory() as uow:
        assert authenticate(uow=uow, username="lea.agent", password="le bon mot de passe").username == "lea.agent"
        assert authenticate(uow=uow, username="lea.agent", password="premier essai long") is None
