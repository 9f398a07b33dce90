"""The web workspace in a real browser: Debian's Chromium driven by Playwright against the app
served by uvicorn on a loopback port, over a database holding the demo. Each role signs in and
walks a real path; every page visited is checked for a server error (a response ≥ 500, or the
error page's text), and screenshots are saved under artifacts/screenshots/.

`USINE_DOCS_SCREENSHOTS=1` also writes the README's two screenshots to docs/screenshots/."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from browser_support import DOCS_SHOTS, Live, Tab, live_server, served_database
from sqlalchemy import func, select
from web_support import PASSWORD, SECRET, World, small_pdf

from db import models as m
from rules.calendar import PARIS
from services import commands
from services.clock import ShiftedClock
from web.devserver import prepare_demo

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with served_database(tmp_path_factory, "web") as db:
        factory = db.uow_factory
        prepare_demo(factory, dossiers=60, seed=1)
        world = World(factory)
        ids = {"walk": world.dossier("submitted"), "claimed": world.dossier("claimed"),
               "showcase": world.dossier("claimed", session="CP-2022-06-15")}
        # Two dossiers on the agenda of a session sitting today (the demo's own are still to come:
        # a vote waits for its session's day).
        ids["to_vote"] = [world.dossier("ready_for_vote", session="CP-2022-06-15") for _ in range(2)]
        with factory() as uow:
            pieces = uow.session.scalars(select(m.Document.id).where(m.Document.dossier_id == ids["showcase"])).all()
        for piece in pieces:
            world.run(commands.review_document, "agent.occitanie", dossier_id=ids["showcase"], document_id=piece,
                      decision="accepted")
        world.run(commands.pay, "finances.occitanie", dossier_id=ids["showcase"])
        world.run(commands.claim_payment, "entreprise.garonne",
                  dossier_id=ids["showcase"], phase=2, kind="advance", amount="6000.00")
        # The service clock runs on from there, in real time (events get distinct instants).
        clock = ShiftedClock(world.clock.now() + timedelta(minutes=5))
        try:
            from api.app import create_app
            app = create_app(uow_factory=factory, clock=clock, secret_key=SECRET)
            if not any(getattr(r, "path", None) == "/ui" for r in app.routes):  # API built without the workspace
                from web.app import mount_web
                mount_web(app, uow_factory=factory, clock=clock)
        except ImportError:
            from web.app import create_standalone_app
            app = create_standalone_app(uow_factory=factory, clock=clock, secret_key=SECRET)
        with live_server(app) as server:
            yield Live(server.url, factory, ids)


@pytest.fixture
def tabs(browser, live, request):
    opened: list[Tab] = []

    def open_tab(username: str, viewport=(1366, 900)) -> Tab:
        tab = Tab(browser, live, request.node.name, username.split(".")[0], viewport)
        opened.append(tab)
        tab.login(username)
        return tab

    yield open_tab
    errors = [e for tab in opened for e in tab.errors]
    for tab in opened:
        tab.close()
    assert not errors, f"server errors seen: {errors}"


def test_an_officer_takes_a_dossier_from_submitted_to_ready_for_vote_with_its_documents_uploaded(live, tabs):
    did = live.ids["walk"]
    reference = live.reference(did)
    officer = tabs("agent.occitanie")
    page = officer.page
    officer.shot("file-de-travail")
    # The queue, filtered as an officer would: this company, newly submitted.
    page.get_by_label("Rechercher", exact=True).fill("Atelier Garonne")
    page.get_by_label("État", exact=True).select_option("submitted")
    page.get_by_role("link", name=reference).wait_for()
    officer.submit(page.get_by_role("link", name=reference))
    assert officer.state() == "candidature déposée"
    officer.shot("dossier-depose")
    officer.submit(page.get_by_role("button", name="Prendre en instruction"))
    assert officer.state() == "instruction de recevabilité"
    officer.submit(page.get_by_role("button", name="Accepter : extrait Kbis de moins de 3 mois"))
    assert "Pièce « extrait Kbis de moins de 3 mois » (v1, extrait-kbis.txt) acceptée." in officer.flash()
    page.get_by_label("Prestataire référencé", exact=True).fill("Cabinet Midi Conseil")
    page.get_by_label("Jours de la phase 1", exact=True).fill("5")
    page.get_by_label("Taux journalier du devis (€ HT)", exact=True).fill("1100,00")
    officer.submit(page.get_by_role("button", name="Déclarer éligible"))
    assert officer.state() == "diagnostic (phase 1)"
    officer.shot("diagnostic")

    consultant = tabs("cabinet.midi")
    consultant.goto(f"/ui/dossiers/{did}")
    consultant.page.get_by_label("Type de pièce", exact=True).select_option("diagnostic_report")
    consultant.page.get_by_label(re.compile("^Fichier")).set_input_files(
        {"name": "rapport-diagnostic.pdf", "mimeType": "application/pdf", "buffer": small_pdf("Rapport de diagnostic")})
    consultant.submit(consultant.page.get_by_role("button", name="Déposer", exact=True))
    assert "Pièce déposée : rapport-diagnostic.pdf" in consultant.flash()
    consultant.shot("rapport-depose")

    officer.goto(f"/ui/dossiers/{did}")
    officer.submit(page.get_by_role("button", name="Accepter : rapport de diagnostic"))
    officer.submit(page.get_by_role("button", name="Accepter le diagnostic"))
    assert officer.state() == "plan d'action (phase 2)"

    applicant = tabs("entreprise.garonne")
    applicant.goto(f"/ui/dossiers/{did}")
    applicant.page.get_by_label("Type de pièce", exact=True).select_option("action_plan")
    applicant.page.get_by_label(re.compile("^Fichier")).set_input_files(
        {"name": "plan-action.pdf", "mimeType": "application/pdf", "buffer": small_pdf("plan-action.pdf")})
    applicant.submit(applicant.page.get_by_role("button", name="Déposer", exact=True))
    assert "Pièce déposée : plan-action.pdf" in applicant.flash()
    # The phase-2 quote came by post: the officer files it himself.
    officer.goto(f"/ui/dossiers/{did}")
    page.get_by_label("Type de pièce", exact=True).select_option("phase2_quote")
    page.get_by_label(re.compile("^Fichier")).set_input_files(
        {"name": "devis-phase-2.pdf", "mimeType": "application/pdf", "buffer": small_pdf("devis-phase-2.pdf")})
    officer.submit(page.get_by_role("button", name="Déposer", exact=True))
    assert "Pièce déposée : devis-phase-2.pdf" in officer.flash()
    applicant.goto(f"/ui/dossiers/{did}")
    applicant.page.get_by_label("Jours de la phase 2", exact=True).fill("20")
    applicant.page.get_by_label("Taux journalier (€ HT)", exact=True).fill("1300")
    applicant.submit(applicant.page.get_by_role("button", name="Déposer le plan d'action"))
    assert "Plan d'action déposé" in applicant.flash()

    officer.goto(f"/ui/dossiers/{did}")
    page.get_by_label("Séance (code)", exact=True).fill("CP-2022-S25")
    officer.submit(page.get_by_role("button", name="Proposer au vote"))
    assert officer.state() == "proposé au vote"
    assert page.inner_text("#aid-total") == "17\u00a0500,00\u00a0€"
    money = page.inner_text("#montants")
    assert "plafond du taux journalier" in money and "2\u00a0000,00\u00a0€" in money
    officer.shot("propose-au-vote")
    assert live.state(did) == "ready_for_vote"


def test_a_head_records_the_votes_of_a_council_session(live, tabs):
    with live.uow_factory() as uow:
        code, count = uow.session.execute(
            select(m.CouncilSession.code, func.count()).join(m.Dossier, m.Dossier.session_id == m.CouncilSession.id)
            .where(m.Dossier.status == "ready_for_vote", m.CouncilSession.code == "CP-2022-06-15")
            .group_by(m.CouncilSession.code)
            .order_by(func.count().desc(), m.CouncilSession.code).limit(1)).one()
        to_vote = uow.session.scalars(select(m.Dossier.id).join(m.CouncilSession)
                                      .where(m.CouncilSession.code == code, m.Dossier.status == "ready_for_vote")
                                      .order_by(m.Dossier.reference)).all()
    head = tabs("cheffe.occitanie")
    assert head.page.url.endswith("/ui/seances")
    head.submit(head.page.get_by_role("link", name=code, exact=True))
    head.shot("ordre-du-jour")
    first = to_vote[0]
    head.page.get_by_label(f"Décision pour {live.reference(first)}").select_option("approved")
    deliberation = head.page.input_value(f"#deliberation_{first}")
    if len(to_vote) > 1:
        head.page.get_by_label(f"Décision pour {live.reference(to_vote[1])}").select_option("adjourned")
    head.page.get_by_role("button", name="Enregistrer les votes").click()
    head.page.locator("#vote-results").wait_for()
    head.check()
    results = head.page.inner_text("#vote-results")
    expected = 2 if len(to_vote) > 1 else 1
    assert f"{expected} enregistré{'s' if expected > 1 else ''}, 0 refusé" in results
    head.shot("votes-enregistres")
    assert live.state(first) == "approved"
    head.goto(f"/ui/dossiers/{first}")
    assert head.state() == "voté / conventionné"
    assert deliberation in head.page.inner_text("main")


def test_finance_pays_a_claim_after_reviewing_it(live, tabs):
    did = live.ids["claimed"]
    claim_id = live.scalar(select(m.PaymentClaim.id).where(m.PaymentClaim.dossier_id == did))
    finance = tabs("finances.occitanie")
    assert finance.page.url.endswith("/ui/paiements")
    finance.submit(finance.page.get_by_role("link", name=f"n°{claim_id}", exact=True))
    figures = finance.page.inner_text("#claim-figures")
    assert "6\u00a0500,00\u00a0€" in figures and "5\u00a0500,00\u00a0€" in figures  # claimed, then eligible
    assert "plafond du taux journalier" in finance.page.inner_text("main")
    assert "taux plafonné" in finance.page.inner_text("#invoices")
    finance.shot("demande-a-payer")
    finance.submit(finance.page.get_by_role("button", name=f"Payer la demande n°{claim_id}"))
    assert "Paiement émis" in finance.flash() and "Montant versé : 5\u00a0500,00\u00a0€" in finance.flash()
    assert finance.page.inner_text("#claim-status") == "payée"
    finance.shot("demande-payee")
    assert live.state(did) == "in_payment"


def test_an_auditor_replays_a_dossier_to_a_past_date_and_sees_the_older_state(live, tabs):
    with live.uow_factory() as uow:
        did = uow.session.scalar(select(m.Dossier.id).where(m.Dossier.status == "closed").order_by(m.Dossier.id))
        events = {e.command: e.at for e in uow.session.scalars(
            select(m.Event).where(m.Event.dossier_id == did).order_by(m.Event.seq))}
        reference = uow.dossier(did).reference
    between = events["propose_for_vote"] + (events["record_vote"] - events["propose_for_vote"]) / 2
    auditor = tabs("audit.occitanie")
    auditor.page.get_by_label("Référence du dossier", exact=True).fill(reference)
    auditor.submit(auditor.page.get_by_role("button", name="Ouvrir"))
    assert "Intégrité vérifiée" in auditor.page.inner_text("#integrity-status")
    assert auditor.page.inner_text("#replay-state") == "clôturé"
    auditor.page.get_by_label(re.compile("^Voir le dossier tel qu'il était")).fill(
        between.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M"))
    auditor.page.get_by_role("button", name="Rejouer").click()
    auditor.page.locator("#replay-state", has_text="proposé au vote").wait_for()
    auditor.check()
    assert "Recalcul conforme" in auditor.page.inner_text("#replay")
    assert "at=" in auditor.page.url
    auditor.shot("rejoue-avant-le-vote")
    auditor.page.locator(".audit-timeline a").first.click()
    auditor.page.locator("#replay-state", has_text="candidature déposée").wait_for()
    auditor.check()
    auditor.shot("rejoue-au-depot")
    # The auditor consults only: no action on the dossier page, and a forged form is refused.
    auditor.goto(f"/ui/dossiers/{did}")
    assert "Aucune action de votre rôle" in auditor.page.inner_text("#actions")
    token = auditor.page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = auditor.page.request.post(f"{live.url}/ui/dossiers/{did}/actions/withdraw",
                                       form={"csrf_token": token, "reason": "essai"}, max_redirects=0)
    assert forged.status == 403
    assert live.state(did) == "closed"


def test_a_person_signs_in_and_moves_around_with_the_keyboard_only(browser, live, request):
    tab = Tab(browser, live, request.node.name, "clavier")
    try:
        tab.goto("/ui/login")
        page = tab.page
        page.keyboard.type("agent.occitanie")  # the identifier field has the focus
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab.check()
        assert page.url.endswith("/ui/dossiers")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "contenu"
        tab.shot("clavier")
    finally:
        tab.close()
    assert not tab.errors


@pytest.mark.parametrize("width,height", [(1024, 768), (820, 1180)])
def test_pages_fit_tablet_widths_without_sideways_scrolling(live, tabs, width, height):
    tab = tabs("agent.occitanie", viewport=(width, height))
    for path in ("/ui/dossiers", f"/ui/dossiers/{live.ids['showcase']}", "/ui/tableau-de-bord", "/ui/seances",
                 "/ui/cycle-de-vie", f"/ui/paiements/{live.scalar(select(func.min(m.PaymentClaim.id)))}"):
        tab.goto(path)
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{path} is {overflow}px wider than a {width}px screen"
    tab.shot(f"tablette-{width}")


def test_the_readme_screenshots_of_the_dossier_page_and_the_dashboard(live, tabs):
    officer = tabs("agent.occitanie", viewport=(1440, 1500))
    officer.goto(f"/ui/dossiers/{live.ids['showcase']}")
    assert officer.state() == "en paiement"
    dossier = officer.shot("dossier", full_page=False)
    officer.goto("/ui/tableau-de-bord")
    assert "sites diagnostiqués" in officer.page.inner_text("main")
    dashboard = officer.shot("tableau-de-bord", full_page=False)
    if os.environ.get("USINE_DOCS_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for source, name in ((dossier, "dossier.png"), (dashboard, "tableau-de-bord.png")):
            (DOCS_SHOTS / name).write_bytes(source.read_bytes())


def test_the_interactive_api_documentation_renders_without_the_internet(browser, live):
    """/docs loads Swagger UI from files Usine ships, never from a CDN (this machine has none)."""
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        page.goto(live.url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
        assert "Usine" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-tag", timeout=15000)  # the operations, from /openapi.json
        assert page.locator(".opblock-tag").count() >= 8
        assert all(url.startswith(live.url) for url in requested), [u for u in requested if not u.startswith(live.url)]
    finally:
        context.close()
