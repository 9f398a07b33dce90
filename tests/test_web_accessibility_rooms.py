"""Accessibility of the four newer rooms of the web workspace, in a real browser (Debian's
Chromium via Playwright; axe-core through tests/a11y_support.py, the `Checker` of
tests/test_web_accessibility.py): no serious or critical violation on

- the applicant portal: home, each step of the candidacy form (a step refused for a bad SIREN
  included), the pieces page, the check-and-file page, the portal's dossier page and its pieces page;
- messaging: the dossier's messages, annotations and expert opinions for the officer, the company
  and the consultant, an annotation written, the expert invitation form, the expert's opinion page
  reached by its signed link (and refused for a missing opinion), the pages of a tampered and of an
  expired link;
- work sharing: the queue's « À moi / À mon équipe / Non affectés » views with their selection
  checkboxes and action bar (officer and head), the dossier's assignment card, the bulk result page,
  the head's teams page and its refused creation;
- letters and exports: the dossier's « Courriers et documents », each letter's preview page (officer
  and company), the council session's documents.

The portal's keyboard-only path through the form's first step is in tests/test_portal_browser.py."""
from __future__ import annotations

import re

import pytest
from browser_support import Live, live_server, served_database
from portal_support import COMPANY_FORM
from sqlalchemy import select
from test_portal_browser import OFFICER, _fill_company
from test_portal_browser import live as portal  # noqa: F401 - the portal's server, its fixture
from test_web_accessibility import Checker
from web_support import SECRET, World, seed_users, small_pdf

from db import models as m
from notifications.fake import InMemorySender
from services import commands, messages
from services.delivery import deliver
from services.demo_teams import seed_demo_teams
from web.app import create_standalone_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
SESSION = "CP-ROOMS"


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    """Occitanie's dossiers played through the services (World): some submitted and not assigned,
    one in diagnostic (a message to the company and one to the consultant), one proposed for vote at CP-ROOMS, one voted (its letters), one with a payment claim;
    the demo teams; served with the world's frozen clock, moved by the tests (an expert's link expires)."""
    with served_database(tmp_path_factory, "a11y_rooms") as db:
        factory = db.uow_factory
        world = World(factory)
        seed_users(factory, world.clock)
        seed_demo_teams(factory, world.clock)
        ids = {"submitted": [world.dossier("submitted") for _ in range(3)],
               "finished": world.dossier("submitted"),
               "diagnostic": world.dossier("diagnostic"),
               "ready_for_vote": world.dossier("ready_for_vote", session=SESSION),
               "approved": world.dossier("approved", session=SESSION),
               "claimed": world.dossier("claimed", session=SESSION)}
        world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=ids["finished"], reason="Hors périmètre.")
        for thread in ("applicant", "consultant"):  # one unread message each for the company and the consultant
            world.run(messages.send_message, "agent.occitanie", dossier_id=ids["diagnostic"], thread=thread,
                      body="Bonjour, le diagnostic avance-t-il comme prévu ?")
        app = create_standalone_app(uow_factory=factory, clock=world.clock, secret_key=SECRET)
        with live_server(app) as server:
            live = Live(server.url, factory, ids)
            live.clock = world.clock  # type: ignore[attr-defined]
            yield live


def _has(c: Checker, *selectors: str) -> None:
    """The page just checked shows these parts (so that axe looked at them)."""
    for sel in selectors:
        assert c.page.locator(sel).count() >= 1, f"{sel} missing on {c.page.url}"


def _letter_previews(c: Checker, did: int, who: str) -> int:
    """Each letter of the dossier's « Courriers et documents », previewed; how many."""
    c.page.goto(f"{c.live.url}/ui/dossiers/{did}")
    links = [a.get_attribute("href") for a in c.page.locator("#courriers a:not([download])").all()]
    for href in links:
        c.check(f"aperçu du courrier {href.rsplit('/', 1)[-1]} ({who})", href)
    return len(links)


def test_an_officers_pages_of_messages_work_sharing_and_letters_pass_axe(browser, rooms, request):
    ids = rooms.ids
    c = Checker(browser, rooms, request, "agent.occitanie")
    for view in ("", "?assigned=me", "?assigned=team", "?assigned=none"):
        c.check(f"file de travail{view} (cases à cocher, barre d'actions)", f"/ui/dossiers{view}")
        _has(c, "#assigned")
    _has(c, "#bulk-form", "input[id^='select-']")
    c.check("dossier déposé (carte d'affectation)", f"/ui/dossiers/{ids['submitted'][0]}")
    _has(c, "#affectation", "#assign-take")
    c.check("dossier en diagnostic (messagerie, annotations, avis)", f"/ui/dossiers/{ids['diagnostic']}")
    _has(c, "#messagerie form.message-form", "#annotations form", "#expert-name")
    c.page.fill("#message-applicant-body", "Merci de nous transmettre le bilan 2021.")
    c.page.set_input_files("#message-applicant-files", files=[
        {"name": "modele-bilan.pdf", "mimeType": "application/pdf", "buffer": small_pdf("Modèle de bilan")}])
    c.tab.submit(c.page.locator("form.message-form", has=c.page.locator("#message-applicant-body"))
                 .get_by_role("button", name="Envoyer le message"))
    c.page.fill("#annotation-body", "Entreprise connue du service : dossier prioritaire.")
    c.tab.submit(c.page.get_by_role("button", name="Annoter"))
    assert "dossier prioritaire" in c.page.inner_text("#annotations")
    c.check("dossier avec un message (pièce jointe) et une annotation")
    _has(c, "#messagerie .attachments a")
    c.page.fill("#expert-name", "Dr Bernard")
    c.page.fill("#expert-email", "bernard@expert.example")
    c.tab.submit(c.page.get_by_role("button", name="Envoyer la demande d'avis"))
    assert "Demande d'avis envoyée" in c.tab.flash()
    c.check("dossier avec un avis demandé")
    c.check("dossier voté (courriers et documents)", f"/ui/dossiers/{ids['approved']}")
    _has(c, "#courriers li[data-letter]")
    assert _letter_previews(c, ids["approved"], "agent") >= 1
    assert _letter_previews(c, ids["ready_for_vote"], "agent, projet avant le vote") >= 1
    c.check("ordre du jour (documents de la séance)", f"/ui/seances/{SESSION}")
    _has(c, "#documents-seance")
    c.done()
    auditor = Checker(browser, rooms, request, "audit.occitanie")
    auditor.check("dossier en diagnostic (messagerie et annotations, lecture seule)", f"/ui/dossiers/{ids['diagnostic']}")
    _has(auditor, "#messagerie", "#annotations")
    auditor.check("dossier voté (courriers)", f"/ui/dossiers/{ids['approved']}")
    auditor.done()


def test_a_heads_queue_views_bulk_action_and_its_result_page_pass_axe(browser, rooms, request):
    ids = rooms.ids
    c = Checker(browser, rooms, request, "cheffe.occitanie")
    for view in ("", "?assigned=team", "?assigned=none", "?closed=1&assigned=none"):
        c.check(f"file de travail{view} (affectation groupée)", f"/ui/dossiers{view}")
    _has(c, "#bulk-form #bulk-officer", "input[id^='select-']")
    # The view chosen in the filters: the list follows in place (htmx), checkboxes and action bar with it.
    c.page.goto(f"{rooms.url}/ui/dossiers")
    with c.page.expect_response(lambda r: "assigned=none" in r.url):
        c.page.select_option("#assigned", "none")
    c.page.locator("#queue-results #bulk-form").wait_for()
    c.check("file de travail « Non affectés » mise à jour en place (htmx)")
    assert c.page.url.endswith("assigned=none")
    c.check("dossier déposé (affecter à)", f"/ui/dossiers/{ids['submitted'][1]}")
    _has(c, "#assign-form")
    c.page.goto(f"{rooms.url}/ui/dossiers?closed=1&assigned=none")
    for did in (*ids["submitted"][1:], ids["finished"]):
        c.page.check(f"#select-{did}")
    c.page.select_option("#bulk-officer", label="Julien Fabre, chargé de mission (Occitanie)")
    c.tab.submit(c.page.get_by_role("button", name="Affecter les dossiers cochés"))
    assert c.page.locator("#bulk-results li[data-result='refused']").count() == 1
    c.check("résultat de l'action groupée (un refus)")
    _has(c, "#bulk-results li[data-result='ok']")
    c.check("ordre du jour (documents de la séance)", f"/ui/seances/{SESSION}")
    c.check("équipes de la région", "/ui/equipes")
    _has(c, "#new-team-form", "section.team form.add-member")
    c.page.fill("#nt-name", "Équipe Toulouse – Garonne")  # taken: the refusal beside the form
    c.page.fill("#nt-code", "occ-doublon")
    c.tab.submit(c.page.get_by_role("button", name="Créer l'équipe"))
    c.page.locator("#new-team-error").wait_for()
    c.check("équipes : création refusée expliquée près du formulaire")
    c.done()


def test_the_companys_and_the_consultants_messages_and_letters_pass_axe(browser, rooms, request):
    ids = rooms.ids
    company = Checker(browser, rooms, request, "entreprise.garonne")
    company.check("mes dossiers (messages non lus)", "/ui/dossiers")
    assert re.search(r"\d+ messages? non lus?", company.page.inner_text("main"))
    company.check("dossier en diagnostic (messagerie)", f"/ui/dossiers/{ids['diagnostic']}")
    _has(company, "#messagerie form.message-form")
    assert company.page.locator("#annotations").count() == 0
    company.page.fill("#message-applicant-body", "Voici l'outil.")
    exe = b"MZ\x90\x00" + b"\x00" * 64
    company.page.set_input_files("#message-applicant-files",
                                 files=[{"name": "outil.pdf", "mimeType": "application/pdf", "buffer": exe}])
    company.tab.submit(company.page.locator("form.message-form", has=company.page.locator("#message-applicant-body"))
                       .get_by_role("button", name="Envoyer le message"))
    assert "type de fichier" in company.page.inner_text("#message-applicant-error")
    company.check("message refusé (pièce jointe interdite)")
    company.check("dossier voté (courriers)", f"/ui/dossiers/{ids['approved']}")
    assert _letter_previews(company, ids["approved"], "entreprise") >= 1
    # The portal as the Occitanie company sees it: its dossiers, a voted one, one with a payment claim.
    company.check("portail : accueil (dossiers de l'entreprise)", "/ui/portail")
    _has(company, "#portal-dossiers")
    company.check("portail : dossier voté (paiement à demander)", f"/ui/portail/dossiers/{rooms.reference(ids['approved'])}")
    _has(company, "#portal-claim")
    company.check("portail : dossier avec une demande de paiement",
                  f"/ui/portail/dossiers/{rooms.reference(ids['claimed'])}")
    _has(company, "#portal-claims")
    company.done()
    consultant = Checker(browser, rooms, request, "cabinet.midi")
    consultant.check("dossier en diagnostic (messagerie du prestataire)", f"/ui/dossiers/{ids['diagnostic']}")
    _has(consultant, "#messagerie form.message-form")
    consultant.check("dossier voté (courriers)", f"/ui/dossiers/{ids['approved']}")
    _letter_previews(consultant, ids["approved"], "prestataire")
    consultant.done()


def test_the_experts_opinion_page_by_its_signed_link_and_its_refusals_pass_axe(browser, rooms, request):
    did = rooms.ids["ready_for_vote"]
    officer = Checker(browser, rooms, request, "agent.occitanie")
    for name, email in (("Mme Lenoir", "lenoir@expert.example"), ("M. Roux", "roux@expert.example")):
        officer.page.goto(f"{rooms.url}/ui/dossiers/{did}")
        officer.page.fill("#expert-name", name)
        officer.page.fill("#expert-email", email)
        officer.tab.submit(officer.page.get_by_role("button", name="Envoyer la demande d'avis"))
    sender = InMemorySender()
    deliver(uow_factory=rooms.uow_factory, sender=sender, clock=rooms.clock)

    def link(email: str) -> str:
        return next(w for w in sender.sent_to(email)[0].text.split() if "/ui/avis/" in w).removeprefix(rooms.url)

    expert = Checker(browser, rooms, request, None)
    expert.check("page d'avis de l'expert", link("lenoir@expert.example"))
    _has(expert, "input[name='opinion']", "#opinion-text")
    expert.page.fill("#opinion-text", "Un avis sans position.")
    # The browser's own check (`required`) off, as in a browser without it: the server's refusal is looked at.
    expert.page.eval_on_selector("#opinion-text", "el => { el.form.noValidate = true; }")
    expert.tab.submit(expert.page.get_by_role("button", name="Donner mon avis"))
    assert expert.page.locator("#opinion-error").count() == 1
    expert.check("avis refusé (position manquante)")
    expert.page.get_by_label("favorable", exact=True).check()
    expert.tab.submit(expert.page.get_by_role("button", name="Donner mon avis"))
    assert "Avis enregistré" in expert.page.inner_text("main")
    expert.check("avis enregistré")
    expert.check("lien d'avis altéré", link("lenoir@expert.example")[:-4] + "AAAA")
    late = link("roux@expert.example")
    rooms.clock.advance(days=16)
    expert.check("lien d'avis expiré", late)
    assert "Ce lien a expiré le" in expert.page.inner_text("#expert-refused")
    officer.check("dossier avec un avis rendu et un lien expiré", f"/ui/dossiers/{did}")
    expert.done()
    officer.done()


def test_the_applicant_portal_from_home_to_the_filed_dossier_passes_axe(browser, portal, request):  # noqa: F811
    c = Checker(browser, portal, request, "entreprise.loire")
    c.check("portail : accueil", "/ui/portail")
    c.tab.submit(c.page.get_by_role("button", name="Commencer une candidature : AMI Industrie du futur (exemple)"))
    assert c.page.url.endswith("/etapes/entreprise")
    c.check("portail : étape entreprise")
    _fill_company(c.page, {**COMPANY_FORM, "siren": "552 100 555"})
    c.tab.submit(c.page.get_by_role("button", name="Enregistrer et continuer"))
    assert "clé de Luhn" in c.page.inner_text("#f-siren-error")
    c.check("portail : étape entreprise refusée (SIREN)")
    c.page.get_by_label("SIREN", exact=True).fill("552 100 554")
    c.tab.submit(c.page.get_by_role("button", name="Enregistrer et continuer"))
    assert c.page.url.endswith("/etapes/projet")
    c.check("portail : étape projet")
    c.tab.submit(c.page.get_by_role("button", name="Enregistrer et continuer"))
    assert c.page.url.endswith("/etapes/projet")
    c.check("portail : étape projet refusée (champs manquants)")
    c.page.get_by_label("Ligne 1 — Diagnostic et études de faisabilité").check()
    c.page.get_by_label("Intitulé du projet").fill("Diagnostic de la ligne de drapage")
    c.page.get_by_label("Description du projet").fill("Étude de faisabilité d'une cellule robotisée.")
    c.page.get_by_label("Montant des dépenses du projet (€ HT)").fill("12 500,50")
    c.page.get_by_label("Aide demandée (€)").fill("6 250,25")
    c.tab.submit(c.page.get_by_role("button", name="Enregistrer et continuer"))
    c.check("portail : étape de minimis")
    c.page.get_by_label("J'atteste sur l'honneur", exact=False).check()
    c.tab.submit(c.page.get_by_role("button", name="Enregistrer et créer le dossier"))
    assert c.page.url.endswith("/etapes/pieces")
    c.check("portail : pièces (aucune déposée)")
    from web.format import KIND_LABELS

    with portal.uow_factory() as uow:
        kinds = uow.catalogue.latest("pdl-ami-idf-exemple").documents.candidacy
    for kind in kinds:
        label = KIND_LABELS[kind]
        c.page.get_by_label(f"Fichier : {label}", exact=True).set_input_files(
            files=[{"name": f"{kind}.pdf", "mimeType": "application/pdf", "buffer": small_pdf(label)}])
        c.tab.submit(c.page.get_by_role("button", name=f"Déposer : {label}", exact=True))
    c.check("portail : pièces complètes")
    c.tab.submit(c.page.get_by_role("link", name="Continuer vers la vérification et le dépôt"))
    c.check("portail : vérification et dépôt")
    c.tab.submit(c.page.get_by_role("button", name="Déposer la candidature"))
    reference = c.page.url.rsplit("/", 1)[-1]
    c.check("portail : dossier déposé")
    _has(c, "#portal-state")
    c.check("portail : pièces du dossier", f"/ui/portail/dossiers/{reference}/pieces")
    # The officer takes it and asks for a missing piece: the pieces page with a request to answer.
    with portal.uow_factory() as uow:
        did = uow.session.scalar(select(m.Dossier.id).where(m.Dossier.reference == reference))
    for fn, kwargs in ((commands.take_for_review, {}), (commands.request_documents, {"kinds": ["other"]})):
        with portal.uow_factory() as uow:
            fn(uow=uow, clock=portal.ids["clock"], actor=OFFICER, dossier_id=did, **kwargs)
    c.check("portail : pièces demandées", f"/ui/portail/dossiers/{reference}/pieces")
    assert "autre pièce" in c.page.inner_text("#pieces").lower()
    c.check("portail : dossier en instruction, une pièce demandée", f"/ui/portail/dossiers/{reference}")
    c.check("portail : accueil avec un dossier", "/ui/portail")
    c.done()
