"""The applicant portal in a real browser (Debian's Chromium, Playwright; the harness of
tests/browser_support.py): a Pays de la Loire company files a candidacy from nothing to
submitted — a step first refused for a bad SIREN and corrected, the pieces uploaded —, then opens
the link of the letter asking for a missing piece from the local mailbox (the SMTP sink of
`usine serve`, the letters really sent over SMTP) and answers it. And the form's first step with
the keyboard alone."""
from __future__ import annotations

import re

import pytest
from a11y_support import assert_focus_visible, tab_to
from browser_support import Live, Tab, live_server, served_database
from portal_support import CALL_OPEN, COMPANY_FORM, LOIRE_USER, PDL
from sqlalchemy import select
from web_support import PASSWORD, SECRET, seed_users, small_pdf

from db import models as m
from services import commands
from services.clock import ShiftedClock
from services.commands import Actor
from services.users import create_user
from web.devserver import free_port

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
OFFICER = Actor("agent.pays-de-la-loire", "officer", regions=("Pays de la Loire",))
# A second account of the same company: the keyboard test's drafts are its own (drafts are per
# account), so each test of the file stands alone, in any order.
KEYBOARD_USER = {**LOIRE_USER, "username": "clavier.loire", "display_name": "M. Roy (Loire Composites)"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The workspace on 15/05/2020 (the call AMI-2020-2 of the Pays de la Loire example open),
    its letters' links on the server's own address, and a local mailbox sink."""
    from notifications.sink import MailboxSink
    from services.config import get_settings

    try:
        with served_database(tmp_path_factory, "portal") as db:
            factory = db.uow_factory
            clock = ShiftedClock(CALL_OPEN)
            seed_users(factory, clock, ("agent.pays-de-la-loire",))
            with factory() as uow:
                create_user(uow=uow, clock=clock, password=PASSWORD, **LOIRE_USER)
            with factory() as uow:
                create_user(uow=uow, clock=clock, password=PASSWORD, **KEYBOARD_USER)
            from api.app import create_app

            app = create_app(uow_factory=factory, clock=clock, secret_key=SECRET)
            port = free_port("127.0.0.1")
            db.patch.setenv("USINE_PUBLIC_URL", f"http://127.0.0.1:{port}")
            get_settings.cache_clear()
            with live_server(app, port=port) as server:
                sink = MailboxSink(db.tmp / "mailbox", port=free_port("127.0.0.1")).start()
                try:
                    state = Live(server.url, factory)
                    state.ids.update(clock=clock, sink=sink)
                    yield state
                finally:
                    sink.stop()
    finally:  # the settings read with the patched environment are not kept
        get_settings.cache_clear()


def _tab(browser, live, request, who: str, username: str = "entreprise.loire") -> Tab:
    tab = Tab(browser, live, request.node.name, who)  # `browser`: the session's Chromium (tests/conftest.py)
    tab.login(username)
    return tab


def _company_known(live) -> None:
    """The company is known to the Région (an earlier dossier gave its name): the form's first
    step fills in its SIREN, name and region."""
    with live.uow_factory() as uow:
        if uow.session.scalar(select(m.Company).where(m.Company.siren == LOIRE_USER["siren"])) is None:
            uow.session.add(m.Company(siren=LOIRE_USER["siren"], name=COMPANY_FORM["name"],
                                      email=COMPANY_FORM["email"], created_at=live.ids["clock"].now()))
            uow.commit()


def _fill_company(page, values: dict) -> None:
    for name in ("siren", "name", "email", "employees", "turnover", "balance_sheet", "equity", "first_fy_months"):
        page.locator(f"#f-{name}").fill(values[name])
    for name in ("region", "activity", "in_difficulty", "tax_social_up_to_date"):
        page.locator(f"#f-{name}").select_option(values[name])


def test_a_company_files_a_candidacy_then_answers_the_letter_asking_for_a_missing_piece(browser, live, request):
    tab = _tab(browser, live, request, "entreprise")
    page = tab.page
    try:
        tab.submit(page.get_by_role("link", name="Mon espace"))
        tab.shot("mon-espace")
        tab.submit(page.get_by_role("button", name="Commencer une candidature : AMI Industrie du futur (exemple)"))
        assert page.url.endswith("/etapes/entreprise")
        # Step 1, a SIREN mistyped: said as it is typed, then refused by the server beside its field.
        _fill_company(page, {**COMPANY_FORM, "siren": "552 100 555"})
        page.locator("#f-siren-live").get_by_text("clé de Luhn", exact=False).wait_for()
        tab.submit(page.get_by_role("button", name="Enregistrer et continuer"))
        error = page.locator("#f-siren-error")
        assert "SIREN : Le SIREN 552100555 ne respecte pas la clé de Luhn" in error.inner_text()
        assert "f-siren-error" in page.locator("#f-siren").get_attribute("aria-describedby")
        assert page.locator("#f-equity").input_value() == "850 000,00"  # what was typed is kept
        tab.shot("siren-refuse")
        page.get_by_label("SIREN", exact=True).fill("552 100 554")
        tab.submit(page.get_by_role("button", name="Enregistrer et continuer"))
        assert page.url.endswith("/etapes/projet")
        # Step 2: the project and its amounts, in French figures.
        page.get_by_label("Ligne 1 — Diagnostic et études de faisabilité").check()
        page.get_by_label("Intitulé du projet").fill("Diagnostic de la ligne de drapage")
        page.get_by_label("Description du projet").fill("Étude de faisabilité d'une cellule robotisée.")
        page.get_by_label("Montant des dépenses du projet (€ HT)").fill("12 500,50")
        page.get_by_label("Aide demandée (€)").fill("6 250,25")
        tab.submit(page.get_by_role("button", name="Enregistrer et continuer"))
        # Step 3: the de minimis attestation; the draft dossier is made.
        page.get_by_label("Aide n°1 — date d'octroi").fill("12/03/2019")
        page.get_by_label("Aide n°1 — montant (€)").fill("15 000")
        page.get_by_label("J'atteste sur l'honneur", exact=False).check()
        tab.submit(page.get_by_role("button", name="Enregistrer et créer le dossier"))
        assert page.url.endswith("/etapes/pieces")
        reference = re.search(r"Dossier ([A-Z]{3}-\d{4}-\d{6}) \(brouillon\)", page.inner_text("#pieces")).group(1)
        with live.uow_factory() as uow:
            kinds = uow.catalogue.latest(PDL).documents.candidacy
            from web.format import KIND_LABELS
        for kind in kinds:
            label = KIND_LABELS[kind]
            page.get_by_label(f"Fichier : {label}", exact=True).set_input_files(
                files=[{"name": f"{kind}.pdf", "mimeType": "application/pdf", "buffer": small_pdf(label)}])
            tab.submit(page.get_by_role("button", name=f"Déposer : {label}", exact=True))
            assert f"Pièce « {label} » déposée" in tab.flash()
        assert page.locator("#pieces-complete").is_visible()
        tab.shot("pieces")
        tab.submit(page.get_by_role("link", name="Continuer vers la vérification et le dépôt"))
        assert "12 500,50 €" in page.inner_text("#recap").replace("\u00a0", " ")
        tab.submit(page.get_by_role("button", name="Déposer la candidature"))
        assert page.url.endswith(f"/ui/portail/dossiers/{reference}")
        assert page.inner_text("#portal-state") == "candidature déposée"
        assert page.inner_text("#portal-holder").startswith("chargé(e) de mission")
        tab.shot("deposee")

        # The officer takes it and asks for a missing piece; the letter goes out over SMTP.
        with live.uow_factory() as uow:
            did = uow.session.scalar(select(m.Dossier.id).where(m.Dossier.reference == reference))
        clock, sink = live.ids["clock"], live.ids["sink"]
        for fn, kwargs in ((commands.take_for_review, {}), (commands.request_documents, {"kinds": ["other"]})):
            with live.uow_factory() as uow:
                fn(uow=uow, clock=clock, actor=OFFICER, dossier_id=did, **kwargs)
        from notifications.sink import Mailbox
        from notifications.smtp import SmtpSender
        from services.delivery import deliver

        deliver(uow_factory=live.uow_factory, clock=clock,
                sender=SmtpSender("127.0.0.1", sink.port, "Usine <ne-pas-repondre@usine.invalid>"))
        letters = [msg for msg in Mailbox(sink.directory).list(limit=None, to="loire-composites")
                   if "Demande de pièces complémentaires" in msg.subject]
        assert len(letters) == 1
        link = re.search(r"(http://\S+/ui/portail/dossiers/\S+/pieces)", Mailbox(sink.directory).get(letters[0].number).body("plain")).group(1)
        assert link == f"{live.url}/ui/portail/dossiers/{reference}/pieces"

        tab.goto(link.removeprefix(live.url))
        assert "autre pièce" in page.inner_text("#pieces").lower()
        tab.shot("demande-de-pieces")
        label = KIND_LABELS["other"]
        page.get_by_label(f"Fichier : {label}", exact=True).set_input_files(
            files=[{"name": "complement.pdf", "mimeType": "application/pdf", "buffer": small_pdf("Complément")}])
        tab.submit(page.get_by_role("button", name=f"Déposer : {label}", exact=True))
        assert "les demandes en cours sont toutes satisfaites" in page.inner_text("#no-request")
        tab.goto(f"/ui/portail/dossiers/{reference}")
        assert page.inner_text("#portal-state") == "instruction de recevabilité"
        assert "Rien ne vous est demandé" in page.inner_text("#demandes")
        # Who has it now: the officer who took it, by the name people know.
        assert page.inner_text("#portal-holder") == ("chargé(e) de mission — Léa Moreau, chargée de mission "
                                                     "(Pays de la Loire)")
        with live.uow_factory() as uow:
            assert uow.session.scalar(select(m.DocumentRequest.status).where(m.DocumentRequest.dossier_id == did)) \
                == "fulfilled"
        tab.shot("demande-satisfaite")
    finally:
        tab.close()
    assert not tab.errors


def test_the_first_step_of_the_candidacy_form_with_the_keyboard_alone(browser, live, request):
    _company_known(live)
    tab = _tab(browser, live, request, "clavier", username=KEYBOARD_USER["username"])
    page = tab.page
    try:
        tab.goto("/ui/portail")
        # Each Tab lands on something on screen with a focus ring (a11y_support.tab_to checks it).
        tab_to(page, "el => el.getAttribute('aria-label') === 'Commencer une candidature : AMI Industrie du futur (exemple)'")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab.check()
        # This account's own new draft (the other test's account has its own).
        assert re.search(r"/etapes/(entreprise)$", page.url), page.url
        typed = {"employees": "48", "equity": "850 000,00", "first_fy_months": "36"}
        chosen = {"activity": "Industrie", "in_difficulty": "Non", "tax_social_up_to_date": "Oui"}
        # The account's company is filled in (SIREN, name, region); the rest is typed, field by field.
        tab_to(page, "el => el.id === 'f-activity'")
        for _ in range(12):
            current = page.evaluate("document.activeElement.id").removeprefix("f-")
            if current in typed:
                page.keyboard.type(typed[current])
            elif current in chosen:
                page.keyboard.type(chosen[current])  # a closed select picks the option typed
            if current == "tax_social_up_to_date":
                break
            page.keyboard.press("Tab")
            assert_focus_visible(page)
        assert page.locator("#f-activity").input_value() == "industrial"
        assert page.locator("#f-tax_social_up_to_date").input_value() == "oui"
        tab_to(page, "el => el.textContent === 'Enregistrer et continuer'")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab.check()
        assert page.url.endswith("/etapes/projet"), page.inner_text("main")
        tab.shot("clavier-etape-1")
    finally:
        tab.close()
    assert not tab.errors
