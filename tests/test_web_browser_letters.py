"""Letters and exports in a real browser (Debian's Chromium via Playwright, the harness of
`tests/browser_support.py`): an officer downloads a dossier's decision letter as PDF from the
dossier page and its text is read back; the queue exported as XLSX holds the screen's rows, same
references, same order."""
from __future__ import annotations

import io
from datetime import timedelta

import openpyxl
import pytest
from browser_support import Live, Tab, live_server, served_database
from pypdf import PdfReader
from web_support import SECRET, World, seed_users

from services.clock import ShiftedClock
from web.app import create_standalone_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def live_letters(tmp_path_factory):
    with served_database(tmp_path_factory, "letters") as db:
        factory = db.uow_factory
        world = World(factory)
        seed_users(factory, world.clock)
        ids = {"approved": world.dossier("approved")}
        for target in ("submitted", "ready_for_vote", "diagnostic", "eligibility_review"):
            world.dossier(target)
        app = create_standalone_app(uow_factory=factory, clock=ShiftedClock(world.clock.now() + timedelta(minutes=5)),
                                    secret_key=SECRET)
        with live_server(app) as server:
            yield Live(server.url, factory, ids)


def test_an_officer_downloads_the_decision_letter_as_pdf_from_the_dossier_page(browser, live_letters, request):
    did = live_letters.ids["approved"]
    reference = live_letters.reference(did)
    officer = Tab(browser, live_letters, request.node.name, "agent")
    try:
        officer.login("agent.occitanie")
        officer.goto(f"/ui/dossiers/{did}")
        letters = officer.page.locator("#courriers")
        assert "Décision" in letters.inner_text()
        with officer.page.expect_download() as download:
            letters.locator('[data-letter="decision"]').get_by_role("link", name="Télécharger (PDF)").click()
        assert download.value.suggested_filename == f"decision-{reference}.pdf"
        text = " ".join("\n".join(p.extract_text() for p in PdfReader(download.value.path()).pages)
                        .replace("\u00a0", " ").split())
        assert f"Dossier {reference} — Notification de l'aide régionale votée" in text
        assert "Atelier Garonne SAS" in text and "17 500,00 €" in text
        assert "Voies et délais de recours" in text and "Tribunal administratif de Toulouse" in text
        officer.shot("courriers")
    finally:
        officer.context.close()
    assert not officer.errors


def test_the_queue_exported_as_xlsx_holds_the_screens_rows_in_the_screens_order(browser, live_letters, request):
    officer = Tab(browser, live_letters, request.node.name, "agent")
    try:
        officer.login("agent.occitanie")
        officer.goto("/ui/dossiers")
        # each row's reference: its link to the dossier (the row may start with a selection box)
        on_screen = officer.page.locator("table.queue tbody tr").evaluate_all(
            "rows => rows.map(r => r.querySelector('a[href*=\"/dossiers/\"]').textContent.trim())")
        assert len(on_screen) == 5
        with officer.page.expect_download() as download:
            officer.page.locator("#queue-exports").get_by_role("link", name="XLSX").click()
        assert download.value.suggested_filename.endswith(".xlsx")
        with open(download.value.path(), "rb") as f:
            sheet = openpyxl.load_workbook(io.BytesIO(f.read())).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:2] == ("Référence", "Entreprise")
        assert [r[0] for r in rows[1:]] == on_screen
    finally:
        officer.context.close()
    assert not officer.errors
