"""Messagerie and expert opinions in a real browser (Debian's Chromium via Playwright, as
`tests/test_web_browser.py`): an officer and the company exchange messages with an attachment,
each sees the other's message and the unread badge of its list clears once read; a forbidden
attachment is refused beside the form; an expert gives an opinion through the link of the e-mail
it received (read from the outbox through the house's delivery, with the fake sender), the officer
sees it; once the link is past its delay, it gets a French page and nothing is written."""
from __future__ import annotations

import pytest
from browser_support import Live, Tab, live_server, served_database
from sqlalchemy import func, select
from web_support import SECRET, World, seed_users, small_pdf

from db import models as m
from notifications.fake import InMemorySender
from services.delivery import deliver
from web.app import create_standalone_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def live_messages(tmp_path_factory):
    with served_database(tmp_path_factory, "messages") as db:
        factory = db.uow_factory
        world = World(factory)
        seed_users(factory, world.clock, ("agent.occitanie", "entreprise.garonne", "cabinet.midi", "cheffe.occitanie"))
        ids = {"dossier": world.dossier("diagnostic")}
        # The world's own clock (frozen, moved by the test): the expert's link is made to expire.
        app = create_standalone_app(uow_factory=factory, clock=world.clock, secret_key=SECRET)
        with live_server(app) as server:
            live = Live(server.url, factory, ids)
            live.clock = world.clock  # type: ignore[attr-defined]
            yield live


def _tab(browser, live, request, username):
    tab = Tab(browser, live, request.node.name, username.split(".")[0] if username else "expert")
    if username:
        tab.login(username)
    return tab


def _write(tab: Tab, thread: str, text: str, path=None) -> None:
    form = tab.page.locator("form.message-form", has=tab.page.locator(f"#message-{thread}-body"))
    tab.page.fill(f"#message-{thread}-body", text)
    if path is not None:
        tab.page.set_input_files(f"#message-{thread}-files", str(path))
    tab.submit(form.get_by_role("button", name="Envoyer le message"))


def _events(live) -> int:
    return live.scalar(select(func.count()).select_from(m.Event))


def test_an_officer_and_the_company_exchange_messages_and_an_expert_answers_by_the_mailed_link(
        browser, live_messages, request, tmp_path):
    live, did = live_messages, live_messages.ids["dossier"]
    pdf = tmp_path / "bilan-2021.pdf"
    pdf.write_bytes(small_pdf("Bilan 2021"))
    officer = _tab(browser, live, request, "agent.occitanie")
    company = _tab(browser, live, request, "entreprise.garonne")
    try:
        officer.goto(f"/ui/dossiers/{did}")
        _write(officer, "applicant", "Bonjour, merci de nous transmettre le bilan 2021.", pdf)
        assert "Message envoyé avec 1 pièce(s) jointe(s)" in officer.flash()

        company.goto("/ui/dossiers")
        assert "1 message non lu" in company.page.inner_text("main")
        company.shot("badge")
        with company.page.expect_navigation():
            company.page.get_by_role("link", name=live.reference(did)).click()
        company.check()
        thread = company.page.inner_text("#messagerie")
        assert "merci de nous transmettre le bilan 2021" in thread and "bilan-2021.pdf" in thread
        assert "Annotations internes" not in company.page.inner_text("main")
        company.goto("/ui/dossiers")
        assert "message non lu" not in company.page.inner_text("main")

        # A forbidden attachment is refused beside its form; what was typed is kept.
        exe = tmp_path / "outil.pdf"
        exe.write_bytes(b"MZ\x90\x00" + b"\x00" * 64)
        company.goto(f"/ui/dossiers/{did}")
        before = _events(live)
        _write(company, "applicant", "Voici l'outil.", exe)
        refusal = company.page.inner_text("#message-applicant-error")
        assert "type de fichier" in refusal and "« outil.pdf »" in refusal
        assert company.page.input_value("#message-applicant-body") == "Voici l'outil."
        assert _events(live) == before

        _write(company, "applicant", "Voici le bilan demandé.", pdf)
        officer.goto("/ui/dossiers")
        assert "1 message non lu" in officer.page.inner_text("main")
        officer.goto(f"/ui/dossiers/{did}")
        assert "Voici le bilan demandé." in officer.page.inner_text("#messagerie")
        officer.shot("messagerie")
        officer.goto("/ui/dossiers")
        assert "message non lu" not in officer.page.inner_text("main")

        # The officer asks an expert; the expert opens the link of the mail it received.
        officer.goto(f"/ui/dossiers/{did}")
        officer.page.fill("#expert-name", "Dr Bernard")
        officer.page.fill("#expert-email", "bernard@expert.example")
        officer.submit(officer.page.get_by_role("button", name="Envoyer la demande d'avis"))
        assert "Demande d'avis envoyée" in officer.flash()
        sender = InMemorySender()
        deliver(uow_factory=live.uow_factory, sender=sender, clock=live.clock)
        mail = sender.sent_to("bernard@expert.example")[0]
        link = next(w for w in mail.text.split() if "/ui/avis/" in w)
        assert link.startswith(live.url)
        expert = _tab(browser, live, request, None)
        expert.goto(link.removeprefix(live.url))
        summary = expert.page.inner_text("main")
        assert "Atelier Garonne SAS" in summary and "RIB" not in summary
        expert.page.get_by_label("réservé").check()
        expert.page.fill("#opinion-text", "Diagnostic utile ; le coût journalier mérite d'être revu.")
        expert.submit(expert.page.get_by_role("button", name="Donner mon avis"))
        assert "Avis enregistré" in expert.page.inner_text("main")
        officer.goto(f"/ui/dossiers/{did}")
        assert "avis réservé" in officer.page.inner_text("#avis")
        assert "le coût journalier mérite d'être revu" in officer.page.inner_text("#avis")

        # A second invitation, opened after its delay: a French page, nothing written.
        officer.page.fill("#expert-name", "Mme Lenoir")
        officer.page.fill("#expert-email", "lenoir@expert.example")
        officer.submit(officer.page.get_by_role("button", name="Envoyer la demande d'avis"))
        deliver(uow_factory=live.uow_factory, sender=sender, clock=live.clock)
        late = next(w for w in sender.sent_to("lenoir@expert.example")[0].text.split() if "/ui/avis/" in w)
        before = _events(live)
        live.clock.advance(days=16)
        expert.goto(late.removeprefix(live.url))
        assert "Ce lien a expiré le" in expert.page.inner_text("#expert-refused")
        assert expert.page.locator("form").count() == 0
        assert _events(live) == before
    finally:
        for tab in (officer, company):
            tab.close()
