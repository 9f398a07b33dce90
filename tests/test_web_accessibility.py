"""Accessibility of the web workspace in a real browser (Debian's Chromium via Playwright, as
tests/browser_support.py): axe-core (tests/a11y_support.py, pinned by tests/a11y/package-lock.json)
finds no serious or critical violation on any kind of page, for each role that sees it — sign-in,
queue, dossier pages in several states and programmes with their action forms, a refused form,
lifecycle chart, council sessions and agenda, payment claims, company pathway, dashboard, audit,
error pages, password page, the accessibility statement — and a person does a whole form path with
the keyboard alone, the focus visible on each step."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from a11y_support import assert_accessible, assert_focus_visible, tab_to
from browser_support import SERVER_ERROR_TEXT, Live, Tab, live_server, served_database
from sqlalchemy import select
from web_support import PASSWORD, SECRET, World

from db import models as m
from db.engine import create_schema, make_engine
from rules.calendar import PARIS
from services.clock import ShiftedClock
from services.demo import DEMO_NOW, load_demo
from services.uow import unit_of_work_factory
from web.app import create_standalone_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@contextmanager
def _serve(tmp_path_factory, suffix: str, as_of: datetime, world_states: tuple[str, ...] = (), **demo):
    """A demo database played to `as_of` (plus, for Occitanie in 2022, World dossiers brought to
    the given states), served by uvicorn with a clock after everything written."""
    with served_database(tmp_path_factory, suffix) as db:
        factory = db.uow_factory
        load_demo(factory, as_of=as_of, **demo)
        ids: dict = {}
        start = as_of
        if world_states:
            world = World(factory)
            for state in world_states:
                ids[state] = world.dossier(state, session="CP-A11Y")
            start = world.clock.now()
        app = create_standalone_app(uow_factory=factory, clock=ShiftedClock(start + timedelta(minutes=5)),
                                    secret_key=SECRET)
        with live_server(app) as server:
            yield Live(server.url, factory, ids)


@pytest.fixture(scope="module")
def occitanie(tmp_path_factory):
    """Occitanie's pathway alive (15/06/2022): a small demo, and dossiers in each working state."""
    with _serve(tmp_path_factory, "a11y_occ", DEMO_NOW, dossiers=14, seed=3, pdl=0,
                world_states=("submitted", "eligibility_review", "diagnostic", "action_plan",
                              "ready_for_vote", "approved", "claimed")) as live:
        yield live


@pytest.fixture(scope="module")
def regions_2025(tmp_path_factory):
    """15/06/2025: Pays de la Loire loans in repayment and default, Nouvelle-Aquitaine pathways."""
    with _serve(tmp_path_factory, "a11y_2025", datetime(2025, 6, 15, 9, 0, tzinfo=PARIS),
                dossiers=4, seed=5, pdl=12, naq_companies=6) as live:
        yield live


class Checker:
    """Visits pages as one person (or nobody) and runs axe on each; collects every failure so that
    one run lists all the pages at fault."""

    def __init__(self, browser, live: Live, request, who: str | None):
        self.tab = Tab(browser, live, request.node.name, (who or "visiteur").split(".")[0])
        self.page = self.tab.page
        self.live = live
        self.failures: list[str] = []
        self.lesser: list[str] = []  # moderate and minor findings: printed (pytest -s), not failing
        self.visited: list[str] = []
        if who:
            self.tab.login(who)

    def check(self, label: str, path: str | None = None) -> None:
        if path is not None:
            response = self.page.goto(self.live.url + path)
            assert response is not None
            body = self.page.inner_text("body")
            assert not any(marker in body for marker in SERVER_ERROR_TEXT), f"{path}: server error"
        self.visited.append(label)
        try:
            found = assert_accessible(self.page, label=label)
            self.lesser += [f"{label}: [{v['impact']}] {v['id']} ({len(v['nodes'])})" for v in found]
        except AssertionError as exc:
            self.failures.append(str(exc))

    def done(self) -> None:
        print("\n".join(["axe, moderate and minor:"] + self.lesser) if self.lesser else "axe: no violation at all")
        self.tab.close()
        assert not self.tab.errors, self.tab.errors
        assert not self.failures, "\n\n".join(self.failures)
        assert self.visited


def _ids(live: Live, query) -> list:
    with live.uow_factory() as uow:
        return list(uow.session.scalars(query))


def _first(live: Live, query):
    found = _ids(live, query.limit(1))
    assert found, str(query)
    return found[0]


def _dossier_in(live: Live, *states: str, programme: str | None = None) -> int:
    q = select(m.Dossier.id).where(m.Dossier.status.in_(states)).order_by(m.Dossier.id)
    if programme:
        q = q.where(m.Dossier.programme_id == programme)
    return _first(live, q)


def test_the_pages_a_visitor_sees_before_signing_in_pass_axe(browser, occitanie, request):
    c = Checker(browser, occitanie, request, None)
    c.check("connexion", "/ui/login")
    c.page.get_by_label("Identifiant", exact=True).fill("agent.occitanie")
    c.page.get_by_label("Mot de passe", exact=True).fill("pas le bon mot de passe")
    with c.page.expect_navigation():
        c.page.get_by_role("button", name="Se connecter").click()
    assert c.page.locator("#login-error").count() == 1
    c.check("connexion refusée")
    c.check("déclaration d'accessibilité", "/ui/accessibilite")
    c.check("page introuvable (404)", "/ui/cette-page-n-existe-pas")
    c.done()


def test_an_officers_pages_pass_axe_in_every_working_state(browser, occitanie, request):
    ids = occitanie.ids
    c = Checker(browser, occitanie, request, "agent.occitanie")
    c.check("file de travail", "/ui/dossiers")
    c.check("file de travail filtrée", "/ui/dossiers?state=submitted&q=Garonne&closed=1")
    for state in ("submitted", "eligibility_review", "diagnostic", "action_plan", "ready_for_vote", "approved",
                  "claimed"):
        c.check(f"dossier ({state})", f"/ui/dossiers/{ids[state]}")
    c.check("dossier clôturé", f"/ui/dossiers/{_dossier_in(occitanie, 'closed')}")
    c.check("dossier rejeté", f"/ui/dossiers/{_dossier_in(occitanie, 'rejected', 'withdrawn', 'lapsed')}")
    # A refused form comes back beside the form (422): a phase 1 of one day is under the minimum.
    c.page.goto(f"{occitanie.url}/ui/dossiers/{ids['eligibility_review']}")
    c.page.get_by_label("Prestataire référencé", exact=True).fill("Cabinet Midi Conseil")
    c.page.get_by_label("Jours de la phase 1", exact=True).fill("1")
    c.page.get_by_label("Taux journalier du devis (€ HT)", exact=True).fill("1100,00")
    with c.page.expect_navigation():
        c.page.get_by_role("button", name="Déclarer éligible").click()
    assert c.page.locator("[data-refusal]").count() == 1
    c.check("formulaire refusé (422)")
    c.check("séances", "/ui/seances")
    c.check("ordre du jour", "/ui/seances/CP-A11Y")
    c.check("demandes de paiement", "/ui/paiements")
    claim = _first(occitanie, select(m.PaymentClaim.id).order_by(m.PaymentClaim.id))
    c.check("demande de paiement", f"/ui/paiements/{claim}")
    c.check("parcours de l'entreprise", "/ui/entreprises/732829320")
    c.check("tableau de bord", "/ui/tableau-de-bord")
    c.check("cycle de vie", "/ui/cycle-de-vie")
    c.check("mot de passe", "/ui/mot-de-passe")
    c.check("dossier introuvable (404)", "/ui/dossiers/999999")
    c.check("déclaration d'accessibilité (connecté)", "/ui/accessibilite")
    c.done()


def test_a_heads_pages_pass_axe(browser, occitanie, request):
    c = Checker(browser, occitanie, request, "cheffe.occitanie")
    c.check("séances et planification", "/ui/seances")
    c.check("ordre du jour et vote groupé", "/ui/seances/CP-A11Y")
    c.check("dossier proposé au vote", f"/ui/dossiers/{occitanie.ids['ready_for_vote']}")
    c.check("file de travail", "/ui/dossiers")
    c.check("tableau de bord", "/ui/tableau-de-bord")
    c.done()


def test_finances_pages_pass_axe(browser, occitanie, request):
    c = Checker(browser, occitanie, request, "finances.occitanie")
    c.check("demandes de paiement", "/ui/paiements")
    claim = _first(occitanie, select(m.PaymentClaim.id).where(m.PaymentClaim.dossier_id == occitanie.ids["claimed"]))
    c.check("demande à payer", f"/ui/paiements/{claim}")
    c.check("dossier avec demande", f"/ui/dossiers/{occitanie.ids['claimed']}")
    c.check("file de travail", "/ui/dossiers")
    c.done()


def test_an_auditors_pages_pass_axe(browser, occitanie, request):
    closed = _dossier_in(occitanie, "closed")
    c = Checker(browser, occitanie, request, "audit.occitanie")
    c.check("audit", "/ui/audit")
    c.check("dossier rejoué", f"/ui/audit/dossiers/{closed}")
    with occitanie.uow_factory() as uow:
        first = uow.session.scalar(select(m.Event.at).where(m.Event.dossier_id == closed).order_by(m.Event.seq))
    at = (first + timedelta(minutes=1)).astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
    c.check("dossier rejoué à une date passée", f"/ui/audit/dossiers/{closed}?at={at}")
    c.check("dossier (lecture seule)", f"/ui/dossiers/{closed}")
    c.check("file de travail", "/ui/dossiers?closed=1")
    c.check("séances", "/ui/seances")
    c.check("demandes de paiement", "/ui/paiements")
    c.done()


def test_an_applicants_and_a_consultants_pages_pass_axe(browser, occitanie, request):
    ids = occitanie.ids
    applicant = Checker(browser, occitanie, request, "entreprise.garonne")
    applicant.check("mes dossiers", "/ui/dossiers")
    applicant.check("dossier en plan d'action (dépôt de pièce, plan)", f"/ui/dossiers/{ids['action_plan']}")
    applicant.check("dossier voté (demande de paiement)", f"/ui/dossiers/{ids['approved']}")
    applicant.check("parcours de l'entreprise", "/ui/entreprises/732829320")
    applicant.check("cycle de vie", "/ui/cycle-de-vie")
    applicant.done()
    consultant = Checker(browser, occitanie, request, "cabinet.midi")
    consultant.check("dossiers du prestataire", "/ui/dossiers")
    consultant.check("dossier en diagnostic (dépôt du rapport)", f"/ui/dossiers/{ids['diagnostic']}")
    consultant.done()


def test_loan_and_pathway_pages_of_the_other_regions_pass_axe(browser, regions_2025, request):
    live = regions_2025
    finance = Checker(browser, live, request, "finances.pays-de-la-loire")
    finance.check("dossier en remboursement (formulaire)", f"/ui/dossiers/{_dossier_in(live, 'in_repayment')}")
    finance.check("demandes de paiement", "/ui/paiements")
    finance.done()
    head = Checker(browser, live, request, "chef.pays-de-la-loire")
    head.check("dossier en défaut (passage en perte)", f"/ui/dossiers/{_dossier_in(live, 'in_default')}")
    head.check("séances", "/ui/seances")
    head.done()
    officer = Checker(browser, live, request, "agent.nouvelle-aquitaine")
    plan = _first(live, select(m.Dossier.plan_id).where(m.Dossier.plan_id.is_not(None)).order_by(m.Dossier.plan_id))
    officer.check("file de travail", "/ui/dossiers")
    officer.check("plan de progrès", f"/ui/dossiers/{plan}")
    aid = _first(live, select(m.Dossier.id).where(m.Dossier.plan_id == plan).order_by(m.Dossier.id))
    officer.check("dossier d'aide", f"/ui/dossiers/{aid}")
    officer.page.goto(f"{live.url}/ui/dossiers/{plan}")
    officer.check("parcours de l'entreprise", officer.page.get_attribute("#company-link", "href"))
    officer.check("tableau de bord", "/ui/tableau-de-bord")
    officer.done()


def test_the_sign_in_page_with_an_identity_provider_and_its_refusal_pass_axe(browser, tmp_path, monkeypatch, request):
    """With ProConnect configured: the sign-in page's provider button, and the refusal page when the
    provider does not answer (an issuer on a loopback port where nothing listens)."""
    from web.devserver import free_port

    monkeypatch.setenv("USINE_OIDC_ISSUER", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("USINE_OIDC_CLIENT_ID", "usine-a11y")
    monkeypatch.setenv("USINE_OIDC_CLIENT_SECRET", "secret-du-client-" + "8" * 32)
    url = f"sqlite:///{tmp_path / 'oidc.db'}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    factory = unit_of_work_factory(url, storage_dir=str(tmp_path / "documents"))
    app = create_standalone_app(uow_factory=factory, clock=ShiftedClock(DEMO_NOW), secret_key=SECRET)
    try:
        with live_server(app) as server:
            c = Checker(browser, Live(server.url, factory), request, None)
            c.check("connexion avec ProConnect", "/ui/login")
            with c.page.expect_navigation():
                c.page.get_by_role("link", name="Se connecter avec ProConnect").click()
            assert "ne répond pas" in c.page.inner_text("#oidc-refused-message")
            # The one answer ≥ 500 expected here: 503, the provider is down.
            assert [e.split(" ", 2)[:2] for e in c.tab.errors] == [["503", "GET"]]
            c.tab.errors.clear()
            c.check("connexion refusée par le fournisseur d'identité")
            c.done()
    finally:
        factory.engine.dispose()


def _active(page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()")


def test_a_person_takes_a_dossier_from_the_queue_and_declares_it_eligible_with_the_keyboard_only(
        browser, occitanie, request):
    did = occitanie.ids["eligibility_review"]
    reference = occitanie.reference(did)
    tab = Tab(browser, occitanie, request.node.name, "clavier")
    page = tab.page
    try:
        tab.goto("/ui/login")
        # The identifier field already has the focus; Shift+Tab goes back up to the header's link,
        # and up again to the skip link, each with its focus ring.
        assert _active(page) == "username"
        page.keyboard.press("Shift+Tab")
        assert assert_focus_visible(page)["text"] == "Usine"
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
        assert_focus_visible(page)
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert _active(page) == "username"
        assert_focus_visible(page)
        page.keyboard.type("agent.occitanie")
        page.keyboard.press("Tab")
        assert_focus_visible(page)
        page.keyboard.type(PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab.check()
        assert page.url.endswith("/ui/dossiers")
        # « Aller au contenu » skips the header and its navigation.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
        assert_focus_visible(page)
        page.keyboard.press("Enter")
        assert _active(page) == "contenu"
        # The search field, typed into; the list follows (htmx) and the dossier's link is reached by Tab.
        tab_to(page, "el => el.id === 'q'")
        page.keyboard.type(reference)
        # htmx answers after a pause in the typing and swaps the list: wait until the filtered list
        # is in place (its address pushed, no request in flight), or a Tab may land on a row it removes
        page.wait_for_function("ref => new URLSearchParams(location.search).get('q') === ref"
                               " && !document.querySelector('.htmx-request')", arg=reference)
        page.locator("#queue-results").get_by_role("link", name=reference).wait_for()
        assert_accessible(page, context="#queue-results", label="la liste mise à jour en place (htmx)")
        # Leaving the search field fetches nothing more: a second answer arriving while the person
        # tabs into the list would replace the link they are on and drop their keyboard focus.
        reloads: list[str] = []
        page.on("request", lambda r: reloads.append(r.url) if "/ui/dossiers" in r.url else None)
        tab_to(page, f"el => el.tagName === 'A' && el.textContent.trim() === {reference!r}")
        page.wait_for_timeout(600)
        assert reloads == [], f"leaving the search field reloaded the list: {reloads}"
        assert _active(page) == reference
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab.check()
        assert tab.state() == "instruction de recevabilité"
        # The eligibility form, field by field.
        tab_to(page, "el => el.id === 'el-consultant'")
        page.keyboard.type("Cabinet Midi Conseil")
        page.keyboard.press("Tab")
        assert _active(page) == "el-days"
        assert_focus_visible(page)
        page.keyboard.type("5")
        page.keyboard.press("Tab")
        assert _active(page) == "el-rate"
        assert_focus_visible(page)
        page.keyboard.type("1100,00")
        tab_to(page, "el => el.tagName === 'BUTTON' && el.textContent.trim() === 'Déclarer éligible'")
        tab.shot("clavier-formulaire")
        with page.expect_navigation():
            page.keyboard.press("Space")
        tab.check()
        assert tab.state() == "diagnostic (phase 1)"
        assert "Dossier déclaré éligible." in tab.flash()
        assert page.get_attribute("#flashes", "aria-live") == "polite"  # read out by screen readers
        tab.shot("clavier-confirmation")
    finally:
        tab.close()
    assert not tab.errors
    assert occitanie.state(did) == "diagnostic"


def test_the_check_fails_on_a_field_without_a_label_and_names_the_element(browser):
    """The helper itself: a page with an unlabelled field and an image without text fails, the
    message naming each rule and the element's selector; a minor problem alone does not fail."""
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        page.set_content('<!doctype html><html lang="fr"><head><title>Essai</title></head><body><main><h1>Essai</h1>'
                         '<form><input id="sans-etiquette" name="x"></form><img src="data:," id="sans-texte">'
                         '</main></body></html>')
        with pytest.raises(AssertionError) as failed:
            assert_accessible(page, label="page d'essai")
        message = str(failed.value)
        assert "label" in message and "#sans-etiquette" in message
        assert "image-alt" in message and "#sans-texte" in message
        assert "page d'essai" in message
        page.set_content('<!doctype html><html lang="fr"><head><title>Essai</title></head><body><main>'
                         '<h1>Essai</h1><p>Un titre de niveau 1 seul : rien de grave.</p></main></body></html>')
        assert assert_accessible(page) == []
        # Only a region of the page: the field outside it is not looked at.
        page.set_content('<!doctype html><html lang="fr"><head><title>Essai</title></head><body><main><h1>Essai</h1>'
                         '<section id="bon"><label for="a">Nom</label><input id="a"></section>'
                         '<input id="hors-zone"></main></body></html>')
        assert_accessible(page, context="#bon")
    finally:
        context.close()
