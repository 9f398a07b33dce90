"""Calls, loans and pathways (SPEC §11) in a real browser (Debian's Chromium via Playwright, as
`tests/test_web_browser.py`): after the demo, finance records a repayment on a Pays de la Loire
loan from its dossier page; the head of service writes off a dossier in default; a
Nouvelle-Aquitaine company page (a demo played to June 2025) shows its aid dossiers."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from browser_support import Live, Tab, live_server, served_database
from sqlalchemy import func, select
from web_support import SECRET

from db import models as m
from rules.calendar import PARIS
from rules.loans import amount_due
from services.clock import ShiftedClock
from services.demo import DEMO_NOW, load_demo
from services.loans import plan_of, repayments_of
from web.app import create_standalone_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@contextmanager
def _serve(tmp_path_factory, suffix: str, as_of: datetime, **demo):
    with served_database(tmp_path_factory, suffix) as db:
        load_demo(db.uow_factory, as_of=as_of, **demo)
        app = create_standalone_app(uow_factory=db.uow_factory, clock=ShiftedClock(as_of + timedelta(minutes=5)),
                                    secret_key=SECRET)
        with live_server(app) as server:
            yield Live(server.url, db.uow_factory)


@pytest.fixture(scope="module")
def live_pdl(tmp_path_factory):
    with _serve(tmp_path_factory, "pdl", DEMO_NOW, dossiers=12, seed=5, pdl=28) as live:
        yield live


@pytest.fixture(scope="module")
def live_naq(tmp_path_factory):
    with _serve(tmp_path_factory, "naq", datetime(2025, 6, 15, 9, 0, tzinfo=PARIS),
                dossiers=4, seed=5, pdl=0, naq_companies=10) as live:
        yield live


def _tab(browser, live, request, username):
    tab = Tab(browser, live, request.node.name, username.split(".")[0])
    tab.login(username)
    return tab


def test_finance_records_a_repayment_on_a_pays_de_la_loire_loan(browser, live_pdl, request):
    today = DEMO_NOW.date()
    with live_pdl.uow_factory() as uow:
        owing = [(d.id, amount_due(plan_of(d), repayments_of(uow.session, d.id), today))
                 for d in uow.session.scalars(select(m.Dossier).where(m.Dossier.status == "in_repayment")
                                              .order_by(m.Dossier.id))]
    did, due = next((i, a) for i, a in owing if a > 0)
    finance = _tab(browser, live_pdl, request, "finances.pays-de-la-loire")
    try:
        finance.goto(f"/ui/dossiers/{did}")
        page = finance.page
        assert "Programme d'exemple — chiffres non officiels" in page.inner_text("#example-notice")
        assert page.get_by_role("table", name="Échéancier du prêt").count() == 1 or page.locator("#echeancier").count() == 1
        outstanding_before = page.inner_text("#loan-outstanding")
        # Too much first: refused beside the form, which keeps what was typed.
        page.get_by_label("Montant reçu (€)", exact=True).fill(f"{due + Decimal('500'):.2f}".replace(".", ","))
        finance.submit(page.get_by_role("button", name="Enregistrer le remboursement"))
        assert "remboursement supérieur au montant dû" in page.inner_text("#repayment-error")
        assert page.get_by_label("Montant reçu (€)", exact=True).input_value() == f"{due + Decimal('500'):.2f}".replace(".", ",")
        finance.shot("remboursement-refuse")
        page.get_by_label("Montant reçu (€)", exact=True).fill(f"{due:.2f}".replace(".", ","))
        finance.submit(page.get_by_role("button", name="Enregistrer le remboursement"))
        assert "Remboursement enregistré" in finance.flash()
        assert page.inner_text("#amount-due").startswith("0,00")
        finance.shot("remboursement-enregistre")
        with live_pdl.uow_factory() as uow:
            assert uow.session.scalar(select(func.count()).select_from(m.Repayment).where(
                m.Repayment.dossier_id == did, m.Repayment.received_on == today)) == 1
        assert outstanding_before  # shown before and after
    finally:
        finance.context.close()
    assert not finance.errors


def test_the_head_writes_off_a_dossier_in_default(browser, live_pdl, request):
    did = live_pdl.scalar(select(m.Dossier.id).where(m.Dossier.status == "in_default").order_by(m.Dossier.id))
    head = _tab(browser, live_pdl, request, "chef.pays-de-la-loire")
    try:
        head.goto(f"/ui/dossiers/{did}")
        assert head.state() == "défaut de remboursement"
        head.page.get_by_label("Motif", exact=True).fill("liquidation judiciaire de l'entreprise")
        head.submit(head.page.get_by_role("button", name="Passer en perte"))
        assert "Prêt passé en perte" in head.flash()
        assert head.state() == "clôturé"
        head.shot("passage-en-perte")
    finally:
        head.context.close()
    assert live_pdl.state(did) == "closed"
    assert live_pdl.scalar(select(m.Dossier.written_off).where(m.Dossier.id == did)) > 0


def test_a_nouvelle_aquitaine_company_page_shows_its_aid_dossiers(browser, live_naq, request):
    with live_naq.uow_factory() as uow:
        plan_id, n = uow.session.execute(select(m.Dossier.plan_id, func.count()).where(m.Dossier.plan_id.is_not(None))
                                         .group_by(m.Dossier.plan_id).order_by(func.count().desc(), m.Dossier.plan_id)).first()
        refs = set(uow.session.scalars(select(m.Dossier.reference).where(m.Dossier.plan_id == plan_id)))
    assert n >= 3
    officer = _tab(browser, live_naq, request, "agent.nouvelle-aquitaine")
    try:
        officer.goto(f"/ui/dossiers/{plan_id}")
        officer.submit(officer.page.get_by_role("link", name="Parcours de l'entreprise"))
        assert officer.page.get_by_role("heading", level=1).inner_text().startswith("Parcours de l'entreprise")
        table = officer.page.inner_text("#company-dossiers")
        assert all(ref in table for ref in refs)
        assert "Plan de progrès" in officer.page.inner_text("main")
        officer.shot("parcours-entreprise")
    finally:
        officer.context.close()
    assert not officer.errors
