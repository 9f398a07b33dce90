"""Agents sign in through an OpenID provider (ProConnect-compatible), tested against a real,
certified one: panva's `oidc-provider` run by node (tests/oidc_support.py), the workspace served by
uvicorn on a loopback port, over the suite's database (SQLite, or PostgreSQL when
USINE_TEST_POSTGRES_URL is set). One provider per module; one workspace per test."""
from __future__ import annotations

import base64
import json
import os
from contextlib import ExitStack
from types import SimpleNamespace

import httpx
import pytest
from browser_support import SHOTS, live_server
from oidc_support import ACCOUNTS, Provider, oidc_env, query_of, walk_sign_in, with_query
from sqlalchemy import func, select
from web_support import DEMO_NOW, SECRET, World, seed_users, use_fast_passwords

from db import models as m
from db.models_auth import User
from db.models_oidc import OidcIdentity
from rules.errors import InvalidInput, RuleViolation
from services import oidc as oidc_service
from services.clock import FrozenClock
from services.users import authenticate, disable_user, get_user
from web.app import create_standalone_app
from web.devserver import free_port

pytestmark = pytest.mark.xdist_group("oidc")



@pytest.fixture(scope="module")
def app_port():
    return free_port()


@pytest.fixture(scope="module")
def provider(app_port):
    base = f"http://127.0.0.1:{app_port}/ui/oidc"
    running = Provider(redirect_uris=[base + "/retour"], post_logout_redirect_uris=[base + "/deconnecte"])
    yield running
    running.stop()


class Workspace:
    def __init__(self, url: str, uow_factory, world: World, issuer: str):
        self.url = url
        self.issuer = issuer
        self.uow_factory = uow_factory
        self.world = world

    def register(self, email: str, **kwargs) -> dict:
        with self.uow_factory() as uow:
            return oidc_service.register_identity(uow=uow, clock=self.world.clock, email=email, **kwargs)

    def user(self, username: str):
        with self.uow_factory() as uow:
            return _columns(get_user(uow, username))

    def identity(self, email: str):
        with self.uow_factory() as uow:
            return _columns(uow.session.scalar(select(OidcIdentity).where(OidcIdentity.email == email)))

    def count_users(self) -> int:
        with self.uow_factory() as uow:
            return uow.session.scalar(select(func.count(User.id)))


def _columns(row):
    """A row's columns, readable once its session is closed."""
    return SimpleNamespace(**{c.key: getattr(row, c.key) for c in row.__table__.columns})


@pytest.fixture
def workspace(uow_factory, provider, app_port, monkeypatch):
    """start(**USINE_OIDC_overrides) → a Workspace served on the port registered at the provider."""
    use_fast_passwords(monkeypatch)
    with ExitStack() as servers:
        def start(**overrides) -> Workspace:
            oidc_env(monkeypatch, provider.issuer, **overrides)
            world = World(uow_factory)
            seed_users(uow_factory, world.clock)
            app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
            server = servers.enter_context(live_server(app, port=app_port))
            return Workspace(server.url, uow_factory, world, provider.issuer)

        yield start


@pytest.fixture
def browser_client():
    with httpx.Client(timeout=15) as client:
        yield client


def refusal(response: httpx.Response) -> str:
    """The French message of the refusal page."""
    text = response.text
    assert 'id="oidc-refused-message"' in text, text[:800]
    start = text.index('id="oidc-refused-message"')
    return text[text.index(">", start) + 1:text.index("</p>", start)]


def test_an_agent_pre_registered_with_a_role_and_region_gets_that_account_at_first_sign_in_and_the_same_one_afterwards(
        workspace, browser_client):
    ws = workspace()
    claire = ACCOUNTS["claire"]
    ws.register(claire.email, role="officer", regions=["Occitanie"])
    before = ws.count_users()

    walk = walk_sign_in(browser_client, ws.url, claire)

    assert walk.response.status_code == 303
    assert walk.response.headers["location"] == "/ui/dossiers"
    identity = ws.identity(claire.email)
    user = ws.user(identity.username)
    assert (user.role, user.regions, user.display_name, user.active) == ("officer", ["Occitanie"], "Claire Martin", True)
    assert (identity.issuer, identity.subject) == (ws.issuer, claire.sub)
    queue = browser_client.get(ws.url + "/ui/dossiers")
    assert queue.status_code == 200
    assert who(queue.text) == ("Claire Martin", "Occitanie")
    # The session keeps the ID token (the logout's id_token_hint): it still fits a browser's cookie.
    cookie = browser_client.cookies.get("usine_session", path="/ui")
    print(f"session cookie after an OpenID sign-in: {len(cookie)} bytes")
    assert len(cookie) < 4000
    # The account opened has no password: the password form never lets anyone into it.
    with ws.uow_factory() as uow:
        for guess in (oidc_service.NO_LOCAL_PASSWORD, "mot-de-passe-claire", "clé-du-coffre-123"):
            assert authenticate(uow=uow, username=user.username, password=guess) is None

    browser_client.cookies.clear()
    again = walk_sign_in(browser_client, ws.url, claire)
    assert again.response.status_code == 303
    assert ws.count_users() == before + 1
    assert ws.identity(claire.email).username == user.username


def who(page: str) -> tuple[str, str]:
    """The header's name, and the regions after the role."""
    name = page.split('class="who-name">', 1)[1].split("<", 1)[0]
    role = page.split('class="who-role">', 1)[1].split("<", 1)[0]
    return name, role.rsplit(" — ", 1)[-1]


def test_the_authorization_request_carries_pkce_s256_state_nonce_and_the_configured_acr_values(
        workspace, browser_client):
    ws = workspace(acr_values="eidas1 eidas2")
    ws.register(ACCOUNTS["hugo"].email, username="agent.nouvelle-aquitaine")

    walk = walk_sign_in(browser_client, ws.url, ACCOUNTS["hugo"])

    asked = query_of(walk.authorization_url)
    assert asked["response_type"] == "code"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43  # base64url of a SHA-256, without padding
    assert len(asked["state"]) >= 20 and len(asked["nonce"]) >= 20
    assert asked["acr_values"] == "eidas1 eidas2"
    assert set(asked["scope"].split()) == {"openid", "email", "given_name", "usual_name"}
    assert set(query_of(walk.callback_url)) >= {"code", "state", "iss"}
    # An account an administrator created opens with its own role and region, whatever the case of the address.
    assert walk.response.status_code == 303 and walk.response.headers["location"] == "/ui/dossiers"
    page = browser_client.get(ws.url + "/ui/dossiers").text
    assert who(page) == ("Hugo Bernard, chargé de mission (Nouvelle-Aquitaine)", "Nouvelle-Aquitaine")


def test_an_email_no_administrator_registered_is_refused_with_a_french_page_and_no_account_is_opened(
        workspace, browser_client):
    ws = workspace()
    before = ws.count_users()

    walk = walk_sign_in(browser_client, ws.url, ACCOUNTS["inconnu"])

    assert walk.response.status_code == 403
    assert refusal(walk.response) == ("Aucun compte d&#39;agent n&#39;est ouvert pour l&#39;adresse "
                                      "« inconnu@ailleurs.example.fr ». Demandez à un administrateur d&#39;Usine de "
                                      "l&#39;enregistrer avec votre rôle et votre région, puis reconnectez-vous.")
    assert ws.count_users() == before
    assert browser_client.get(ws.url + "/ui/dossiers").status_code == 303  # still signed out


def test_a_disabled_account_is_refused_even_through_the_provider(workspace, browser_client):
    ws = workspace()
    ancien = ACCOUNTS["ancien"]
    ws.register(ancien.email, username="agent.occitanie")
    with ws.uow_factory() as uow:
        disable_user(uow=uow, clock=ws.world.clock, username="agent.occitanie")

    walk = walk_sign_in(browser_client, ws.url, ancien)

    assert walk.response.status_code == 403
    assert "« ancien.agent@occitanie.example.fr » est désactivé : connexion refusée" in refusal(walk.response)
    assert ws.identity(ancien.email).last_sign_in_at is None
    assert browser_client.get(ws.url + "/ui/dossiers").status_code == 303


def test_a_callback_whose_state_matches_no_sign_in_in_progress_is_refused(workspace, browser_client):
    ws = workspace()
    ws.register(ACCOUNTS["claire"].email, role="officer", regions=["Occitanie"])

    walk = walk_sign_in(browser_client, ws.url, ACCOUNTS["claire"],
                        tamper_callback=lambda url: with_query(url, state="un-etat-forge-par-un-tiers-000000"))

    assert walk.response.status_code == 400
    assert "paramètre « state » inconnu ou expiré" in refusal(walk.response)
    assert ws.identity(ACCOUNTS["claire"].email).username is None  # nothing provisioned
    assert browser_client.get(ws.url + "/ui/dossiers").status_code == 303


def test_an_id_token_carrying_another_nonce_than_the_one_sent_is_refused(workspace, browser_client):
    ws = workspace()
    ws.register(ACCOUNTS["claire"].email, role="officer", regions=["Occitanie"])

    # The provider is asked for another nonce than the one the session keeps (a replayed or
    # injected authorization response): the ID token it signs carries that other nonce.
    walk = walk_sign_in(browser_client, ws.url, ACCOUNTS["claire"],
                        tamper_authorization=lambda url: with_query(url, nonce="nonce-d-une-autre-connexion-0000"))

    assert walk.response.status_code == 400
    assert "jeton d&#39;identité renvoyé par ProConnect est invalide (nonce)" in refusal(walk.response)
    assert ws.identity(ACCOUNTS["claire"].email).username is None
    assert browser_client.get(ws.url + "/ui/dossiers").status_code == 303


def test_an_authentication_level_below_the_configured_acr_is_refused(workspace, browser_client):
    ws = workspace(acr_values="eidas2")  # the provider authenticates Claire at eidas1
    ws.register(ACCOUNTS["claire"].email, role="officer", regions=["Occitanie"])

    walk = walk_sign_in(browser_client, ws.url, ACCOUNTS["claire"])

    assert query_of(walk.authorization_url)["acr_values"] == "eidas2"
    assert walk.response.status_code == 403
    assert refusal(walk.response) == ("Niveau d&#39;authentification insuffisant : « eidas1 » reçu du fournisseur, "
                                      "« eidas2 » exigé. Connexion refusée.")
    assert ws.identity(ACCOUNTS["claire"].email).username is None


def test_logging_out_of_a_provider_session_ends_it_at_the_provider_with_the_id_token_hint(workspace, browser_client):
    ws = workspace()
    ws.register(ACCOUNTS["claire"].email, role="officer", regions=["Occitanie"])
    walk_sign_in(browser_client, ws.url, ACCOUNTS["claire"])
    page = browser_client.get(ws.url + "/ui/dossiers")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert f"form-action 'self' {ws.issuer}" in page.headers["content-security-policy"]

    out = browser_client.post(ws.url + "/ui/logout", data={"csrf_token": csrf})

    assert out.status_code in (302, 303)
    end_session = out.headers["location"]
    assert end_session.startswith(ws.issuer + "/session/end?")
    asked = query_of(end_session)
    assert asked["post_logout_redirect_uri"] == ws.url + "/ui/oidc/deconnecte"
    header, claims, _ = asked["id_token_hint"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert claims["sub"] == ACCOUNTS["claire"].sub and claims["acr"] == "eidas1"
    assert browser_client.get(ws.url + "/ui/dossiers").status_code == 303  # signed out of Usine already


def test_the_sign_in_page_offers_the_provider_only_when_one_is_configured(workspace, browser_client, monkeypatch):
    ws = workspace(label="ProConnect")
    page = browser_client.get(ws.url + "/ui/login").text
    assert "Se connecter avec ProConnect" in page and 'name="password"' in page

    monkeypatch.delenv("USINE_OIDC_ISSUER")
    bare = create_standalone_app(uow_factory=ws.uow_factory, clock=ws.world.clock, secret_key=SECRET)
    with live_server(bare) as server:
        with httpx.Client(timeout=15) as other:
            page = other.get(server.url + "/ui/login").text
            assert "Se connecter avec" not in page and 'name="password"' in page
            assert other.get(server.url + "/ui/oidc/connexion").status_code == 404


def test_no_address_is_registered_without_a_role_nor_linked_to_a_company_account(uow_factory, clock):
    seed_users(uow_factory, clock, ("entreprise.garonne",))
    with uow_factory() as uow:
        with pytest.raises(InvalidInput) as no_role:
            oidc_service.register_identity(uow=uow, clock=clock, email="quelqu.un@region.example.fr")
        assert no_role.value.field == "role"
        with pytest.raises(InvalidInput) as no_region:
            oidc_service.register_identity(uow=uow, clock=clock, email="quelqu.un@region.example.fr", role="officer")
        assert no_region.value.field == "regions"
        with pytest.raises(RuleViolation) as company:
            oidc_service.register_identity(uow=uow, clock=clock, email="contact@garonne.example.fr",
                                           username="entreprise.garonne")
        assert company.value.rule == "oidc_agents_only"
        assert oidc_service.list_identities(uow) == []


def test_an_address_bound_to_one_provider_identity_opens_nothing_under_another(uow_factory, clock):
    issuer = "https://fournisseur.example.fr"
    with uow_factory() as uow:
        oidc_service.register_identity(uow=uow, clock=clock, email="cheffe@occitanie.example.fr", role="head",
                                       regions=["Occitanie"], display_name="Mme Roux, cheffe de service")
    claims = {"sub": "sujet-1", "email": "cheffe@occitanie.example.fr", "acr": "eidas1"}
    with uow_factory() as uow:
        first = oidc_service.sign_in(uow=uow, clock=clock, issuer=issuer, claims=claims)
    assert (first.role, first.display_name, first.provisioned) == ("head", "Mme Roux, cheffe de service", True)
    with uow_factory() as uow:
        with pytest.raises(oidc_service.OidcRefused) as refused:
            oidc_service.sign_in(uow=uow, clock=clock, issuer=issuer, claims={**claims, "sub": "sujet-2"})
    assert refused.value.rule == "oidc_identity_mismatch"
    with uow_factory() as uow:
        with pytest.raises(oidc_service.OidcRefused) as unverified:
            oidc_service.sign_in(uow=uow, clock=clock, issuer=issuer, claims={**claims, "email_verified": False})
    assert unverified.value.rule == "oidc_email_unverified"


@pytest.mark.browser
def test_an_officer_signs_in_with_proconnect_works_on_his_region_s_queue_and_signs_out_at_the_provider_too(
        workspace, browser):
    ws = workspace()
    claire = ACCOUNTS["claire"]
    ws.register(claire.email, role="officer", regions=["Occitanie"])
    dossier = ws.world.dossier("submitted")
    with ws.uow_factory() as uow:
        reference = uow.session.scalar(select(m.Dossier.reference).where(m.Dossier.id == dossier))
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(ws.url + "/ui/login")
        page.screenshot(path=str(SHOTS / "oidc-01-connexion.png"))
        if os.environ.get("USINE_DOCS_SCREENSHOTS") == "1":  # docs/oidc.md's picture
            page.screenshot(path=str(SHOTS.parent.parent / "docs" / "screenshots" / "oidc-connexion.png"))
        with page.expect_navigation():
            page.get_by_role("link", name="Se connecter avec ProConnect").click()
        assert page.url.startswith(ws.issuer + "/interaction/")
        page.get_by_label("Adresse électronique").fill(claire.email)
        page.get_by_label("Mot de passe").fill(claire.password)
        with page.expect_navigation(url=ws.url + "/ui/dossiers"):
            page.get_by_role("button", name="Valider").click()

        # Back in the workspace as the officer the administrator registered: his role, his region, his queue.
        assert page.inner_text(".who-name") == "Claire Martin"
        assert page.inner_text(".who-role").endswith("— Occitanie")
        assert "Bienvenue, Claire Martin : votre compte vient d'être ouvert." in page.inner_text("#flashes")
        page.get_by_role("link", name=reference).wait_for()
        page.screenshot(path=str(SHOTS / "oidc-02-file-de-travail.png"), full_page=True)

        # Signing out of Usine ends the provider's session too (RP-initiated logout).
        with page.expect_navigation():
            page.get_by_role("button", name="Se déconnecter").click()
        assert page.url.startswith(ws.issuer + "/session/end")
        with page.expect_navigation(url=ws.url + "/ui/login"):
            page.get_by_role("button", name="Me déconnecter").click()
        assert "Vous êtes déconnecté(e) d'Usine et de ProConnect." in page.inner_text("#flashes")
        page.screenshot(path=str(SHOTS / "oidc-03-deconnecte.png"))
        page.goto(ws.url + "/ui/dossiers")
        assert page.url.startswith(ws.url + "/ui/login")
        # The provider asks for the password again: its session is over, not only Usine's.
        with page.expect_navigation():
            page.get_by_role("link", name="Se connecter avec ProConnect").click()
        assert page.url.startswith(ws.issuer + "/interaction/")
        page.get_by_label("Mot de passe").wait_for()
    finally:
        context.close()
    assert not errors, errors


def test_an_administrator_registers_agents_addresses_and_checks_the_provider_from_the_command_line(
        database_url, provider, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.oidc import oidc_app
    from services import runtime
    from services.config import get_settings

    monkeypatch.setenv("USINE_DATABASE_URL", database_url)
    monkeypatch.setenv("USINE_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("USINE_CLOCK_START", raising=False)
    oidc_env(monkeypatch, provider.issuer)
    get_settings.cache_clear()
    runtime.default_clock.cache_clear()
    monkeypatch.setattr(runtime, "default_clock", lambda: FrozenClock(DEMO_NOW))
    try:
        runner = CliRunner()
        added = runner.invoke(oidc_app, ["add", "Claire.Martin@occitanie.example.fr", "--role", "officer",
                                         "--region", "Occitanie"])
        assert added.exit_code == 0, added.output
        assert json.loads(added.output)["email"] == "claire.martin@occitanie.example.fr"
        no_role = runner.invoke(oidc_app, ["add", "sans.role@occitanie.example.fr"])
        assert no_role.exit_code == 1
        assert "role : obligatoire pour une adresse sans compte (aucun rôle par défaut)." in no_role.output
        listed = runner.invoke(oidc_app, ["list"])
        assert listed.output.split() == ["claire.martin@occitanie.example.fr", "à", "ouvrir", ":", "officer",
                                         "Occitanie", "jamais", "connecté(e)"]
        checked = runner.invoke(oidc_app, ["check"])
        assert checked.exit_code == 0, checked.output
        assert f"end_session_endpoint     {provider.issuer}/session/end" in checked.output
        monkeypatch.setenv("USINE_OIDC_ACR_VALUES", "eidas4")
        wrong = runner.invoke(oidc_app, ["check"])
        assert wrong.exit_code == 1 and "À corriger : acr « eidas4 » non annoncé." in wrong.output
    finally:
        get_settings.cache_clear()


def test_a_sign_in_the_person_cancels_at_the_provider_or_a_provider_out_of_reach_gets_a_french_page(
        workspace, browser_client, monkeypatch, free_tcp_port):
    ws = workspace()
    browser_client.get(ws.url + "/ui/oidc/connexion")
    cancelled = browser_client.get(ws.url + "/ui/oidc/retour", params={
        "error": "access_denied", "error_description": "End-User aborted interaction"})
    assert cancelled.status_code == 400
    assert refusal(cancelled) == "ProConnect a refusé la connexion (access_denied : End-User aborted interaction)."

    oidc_env(monkeypatch, f"http://127.0.0.1:{free_tcp_port}", label="Connexion régionale")
    unreachable = create_standalone_app(uow_factory=ws.uow_factory, clock=ws.world.clock, secret_key=SECRET)
    with live_server(unreachable) as server, httpx.Client(timeout=15) as other:
        assert "Se connecter avec Connexion régionale" in other.get(server.url + "/ui/login").text
        down = other.get(server.url + "/ui/oidc/connexion")
        assert down.status_code == 503
        assert refusal(down).startswith("Connexion régionale ne répond pas")


@pytest.fixture
def free_tcp_port():
    """A loopback port nothing listens on."""
    return free_port()
