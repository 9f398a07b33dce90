"""The accessibility statement (« Déclaration d'accessibilité », RGAA 4.1 model) through HTTP: read
without signing in, linked from the footer of every page with the conformity mention, honest about
the absence of an audit, and naming the test environment the checks really ran with. And the
checks themselves never pass quietly when axe-core cannot run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_web_pages import app, client_for, text_of, world  # noqa: F401 - the shared fixtures

from services.config import Settings
from web import accessibility

LOCK = Path(__file__).resolve().parent / "a11y" / "package-lock.json"


def test_a_visitor_reads_the_accessibility_statement_without_signing_in(app):  # noqa: F811
    response = client_for(app).get("/ui/accessibilite")
    assert response.status_code == 200
    page = text_of(response.text)
    assert "Déclaration d'accessibilité" in page
    # No RGAA audit yet: the legal mention is « non conforme », and the page says why.
    assert "est non conforme avec le référentiel général d'amélioration de l'accessibilité (RGAA), version 4.1.2" in page
    assert "Aucun audit de conformité au RGAA n'a encore été réalisé" in page
    for part in ("État de conformité", "Contenus non accessibles", "Établissement de cette déclaration",
                 "Environnement de test", "Retour d'information et contact", "Voies de recours"):
        assert part in page, part
    assert "établie le 04/12/2026" in page
    assert "Défenseur des droits" in page and "Libre réponse 71120, 75342 Paris CEDEX 07" in page
    assert "Se déconnecter" not in page


def test_the_statement_names_the_axe_core_version_that_the_lock_installs(app):  # noqa: F811
    locked = json.loads(LOCK.read_text(encoding="utf-8"))["packages"]["node_modules/axe-core"]["version"]
    assert accessibility.AXE_CORE_VERSION == locked
    page = text_of(client_for(app).get("/ui/accessibilite").text)
    assert f"axe-core {locked}" in page and "Chromium" in page


def test_every_page_links_the_statement_from_its_footer_with_the_conformity_mention(app, world):  # noqa: F811
    did = world.dossier("submitted")
    visitor = client_for(app)
    officer = client_for(app, "agent.occitanie")
    pages = [visitor.get("/ui/login"), visitor.get("/ui/accessibilite"), visitor.get("/ui/nulle-part"),
             officer.get("/ui/dossiers"), officer.get(f"/ui/dossiers/{did}"), officer.get("/ui/cycle-de-vie"),
             officer.get("/ui/dossiers/999999"), officer.get("/ui/mot-de-passe")]
    assert [p.status_code for p in pages] == [200, 200, 404, 200, 200, 200, 404, 200]
    for response in pages:
        assert '<a href="/ui/accessibilite" id="accessibility-link">Accessibilité : non conforme</a>' in response.text, \
            response.url


def test_the_statement_gives_the_contact_the_deployment_configured(app, monkeypatch):  # noqa: F811
    import web.routes_accessibility as route

    monkeypatch.setattr(route, "get_settings", lambda: Settings(accessibility_contact="accessibilite@region.example.fr"))
    html = client_for(app).get("/ui/accessibilite").text
    assert '<a href="mailto:accessibilite@region.example.fr">accessibilite@region.example.fr</a>' in html
    monkeypatch.setattr(route, "get_settings", lambda: Settings(accessibility_contact=None))
    page = text_of(client_for(app).get("/ui/accessibilite").text)
    assert "auprès du service de la région qui instruit votre dossier" in page
    assert "mailto:" not in client_for(app).get("/ui/accessibilite").text


def test_a_contact_is_a_mail_address_a_web_form_or_plain_text():
    assert accessibility.contact_link("a11y@region.fr") == {"href": "mailto:a11y@region.fr", "text": "a11y@region.fr"}
    assert accessibility.contact_link("https://region.fr/contact")["href"] == "https://region.fr/contact"
    assert accessibility.contact_link("Hôtel de région, 31000 Toulouse") == {"href": None,
                                                                            "text": "Hôtel de région, 31000 Toulouse"}
    assert accessibility.contact_link("javascript:alert(1)")["href"] is None
    assert accessibility.contact_link("") is None


@pytest.fixture
def no_axe(tmp_path, monkeypatch):
    import a11y_support

    a11y_support.axe_source.cache_clear()
    monkeypatch.setattr(a11y_support, "AXE_PACKAGE", tmp_path / "node_modules" / "axe-core")
    yield a11y_support
    a11y_support.axe_source.cache_clear()


def test_the_accessibility_check_fails_and_says_what_to_install_without_node_and_npm(no_axe, monkeypatch):
    monkeypatch.setattr(no_axe.shutil, "which", lambda tool: None)
    with pytest.raises(pytest.fail.Exception) as failed:
        no_axe.axe_source()
    assert "node and npm not found" in str(failed.value)
    assert "apt-get install nodejs npm" in str(failed.value) and "make a11y-packages" in str(failed.value)


def test_the_accessibility_check_fails_when_axe_core_is_not_installed_or_not_the_locked_version(no_axe):
    with pytest.raises(pytest.fail.Exception) as failed:
        no_axe.axe_source()
    assert "axe-core is not installed" in str(failed.value) and "make a11y-packages" in str(failed.value)
    no_axe.AXE_PACKAGE.mkdir(parents=True)
    (no_axe.AXE_PACKAGE / "axe.min.js").write_text("/* axe */", encoding="utf-8")
    (no_axe.AXE_PACKAGE / "package.json").write_text('{"version": "4.0.0"}', encoding="utf-8")
    with pytest.raises(pytest.fail.Exception) as failed:
        no_axe.axe_source()
    assert "axe-core 4.0.0 is installed" in str(failed.value) and f"pins {no_axe.axe_version()}" in str(failed.value)
