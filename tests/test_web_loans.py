"""The workspace for calls, loans and pathways (SPEC §11), over a demo played through the
services: finance records a repayment from the dossier page (a repayment above what is due is
refused naming the rule, beside the form that keeps what was typed, nothing written); the head
writes off a dossier in default; the schedule downloads as CSV and PDF; the queue filters by
call and line; the company page shows a pathway and its plan's actions."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from decimal import Decimal
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_support import PASSWORD, SECRET, use_fast_passwords

from db import models as m
from notifications.rendering import render
from rules.calendar import PARIS
from rules.french import euros as fr_euros
from rules.loans import amount_due
from services.clock import FrozenClock
from services.demo import DEMO_NOW, load_demo
from services.loans import plan_of, repayments_of
from web.app import create_standalone_app

TODAY = DEMO_NOW.date()


def _client(app, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/ui/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                          "next": ""}).status_code == 303
    return client


def _form(html: str) -> dict:
    return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1),
            "version": re.search(r'name="version" value="(\d+)"', html).group(1)}


@pytest.fixture
def pdl(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    load_demo(uow_factory, dossiers=12, seed=5, pdl=28)
    return create_standalone_app(uow_factory=uow_factory, clock=FrozenClock(DEMO_NOW), secret_key=SECRET)


def _owing(uow_factory) -> tuple[int, Decimal]:
    with uow_factory() as uow:
        for d in uow.session.scalars(select(m.Dossier).where(m.Dossier.status == "in_repayment").order_by(m.Dossier.id)):
            due = amount_due(plan_of(d), repayments_of(uow.session, d.id), TODAY)
            if due > 0:
                return d.id, due
    raise AssertionError("the demo leaves a repayment to record")


def _repayments(uow_factory, dossier_id: int) -> int:
    with uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(m.Repayment).where(m.Repayment.dossier_id == dossier_id))


def test_finance_records_a_repayment_and_one_above_what_is_due_is_refused_beside_the_form(pdl, uow_factory):
    dossier_id, due = _owing(uow_factory)
    finance = _client(pdl, "finances.pays-de-la-loire")
    page = finance.get(f"/ui/dossiers/{dossier_id}")
    assert page.status_code == 200
    assert "Programme d'exemple — chiffres non officiels" in unescape(page.text)
    assert 'id="echeancier"' in page.text and "Capital restant dû" in page.text and "Appel AMI-20" in page.text
    before = _repayments(uow_factory, dossier_id)
    too_much = f"{due + Decimal('1000.00'):.2f}".replace(".", ",")
    refused = finance.post(f"/ui/dossiers/{dossier_id}/actions/record_repayment",
                           data={**_form(page.text), "amount": too_much, "received_on": TODAY.isoformat()})
    assert refused.status_code == 422
    assert "règle « remboursement supérieur au montant dû »" in html.unescape(refused.text)
    assert 'id="repayment-error"' in refused.text and "[overpayment]" not in refused.text
    assert f'value="{too_much}"' in refused.text  # the form keeps what was typed
    assert _repayments(uow_factory, dossier_id) == before  # nothing written
    done = finance.post(f"/ui/dossiers/{dossier_id}/actions/record_repayment",
                        data={**_form(refused.text), "amount": f"{due:.2f}", "received_on": TODAY.isoformat()})
    assert done.status_code == 303
    assert _repayments(uow_factory, dossier_id) == before + 1
    with uow_factory() as uow:
        d = uow.dossier(dossier_id)
        assert amount_due(plan_of(d), repayments_of(uow.session, d.id), TODAY) == 0


def test_an_officer_cannot_record_a_repayment(pdl, uow_factory):
    dossier_id, due = _owing(uow_factory)
    officer = _client(pdl, "agent.pays-de-la-loire")
    page = officer.get(f"/ui/dossiers/{dossier_id}")
    assert 'id="repayment-form"' not in page.text
    before = _repayments(uow_factory, dossier_id)
    refused = officer.post(f"/ui/dossiers/{dossier_id}/actions/record_repayment",
                           data={**_form(page.text), "amount": f"{due:.2f}", "received_on": TODAY.isoformat()})
    assert refused.status_code == 422, refused.text
    alert = re.search(r'id="action-error"[^>]*>([^<]*)<', refused.text)
    said = html.unescape(alert.group(1)) if alert else ""
    assert "règle « action non permise »" in said and "Rien n'a été modifié" in said
    assert "[not_allowed]" not in said and "officer" not in said and "record_repayment" not in said
    assert _repayments(uow_factory, dossier_id) == before


def test_the_head_writes_off_a_dossier_in_default_with_a_reason(pdl, uow_factory):
    with uow_factory() as uow:
        d = uow.session.scalars(select(m.Dossier).where(m.Dossier.status == "in_default")).first()
        dossier_id, outstanding = d.id, d.loan_outstanding
    head = _client(pdl, "chef.pays-de-la-loire")
    page = head.get(f"/ui/dossiers/{dossier_id}")
    assert "défaut de remboursement" in page.text and 'id="write-off-form"' in page.text
    empty = head.post(f"/ui/dossiers/{dossier_id}/actions/write_off", data={**_form(page.text), "reason": "   "})
    assert empty.status_code == 422
    # The refusal stands in the write-off form, in French: the reason is asked for.
    refusal = re.search(r'<p class="error"[^>]*id="write-off-error"[^>]*>([^<]+)</p>', empty.text)
    assert refusal and "motif" in refusal.group(1).lower()
    done = head.post(f"/ui/dossiers/{dossier_id}/actions/write_off",
                     data={**_form(page.text), "reason": "liquidation judiciaire"})
    assert done.status_code == 303
    with uow_factory() as uow:
        d = uow.dossier(dossier_id)
        assert d.status == "closed" and d.written_off == outstanding
        letter = uow.session.scalars(select(m.Notification.context).where(
            m.Notification.dossier_id == dossier_id, m.Notification.kind == "dossier_closed")).one()
    # The page no longer says the principal is owed: it says it was written off, and when.
    closed = html.unescape(head.get(f"/ui/dossiers/{dossier_id}").text)
    shown = re.search(r'<dd id="loan-outstanding">([^<]+)</dd>', closed).group(1)
    assert shown == f"{fr_euros(outstanding)}, passé en perte le {TODAY:%d/%m/%Y}"
    assert "Capital restant dû" not in closed and "Dû à ce jour" not in closed
    # The closing letter gives the loan's balance and says what a write-off means for the company.
    text = render("dossier_closed", letter).text
    assert f"capital non remboursé, passé en perte : {fr_euros(outstanding)}" in text
    assert "n'éteint pas votre dette" in text


def test_the_schedule_downloads_as_csv_and_pdf(pdl, uow_factory):
    dossier_id, _ = _owing(uow_factory)
    finance = _client(pdl, "finances.pays-de-la-loire")
    got = finance.get(f"/ui/dossiers/{dossier_id}/echeancier.csv")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Programme d'exemple — chiffres non officiels"]
    header = rows[2]
    assert header[:3] == ["N°", "Échéance", "Capital (€)"]
    with uow_factory() as uow:
        d = uow.dossier(dossier_id)
        plan = plan_of(d)
    assert len(rows) - 3 == len(plan)
    assert rows[3][1] == f"{plan[0].due_on:%d/%m/%Y}" and rows[3][3] == f"{plan[0].interest:.2f}".replace(".", ",")
    pdf = finance.get(f"/ui/dossiers/{dossier_id}/echeancier.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


def test_a_csv_cell_that_a_spreadsheet_would_run_is_neutralised():
    from services.csv_export import neutralise_cell as neutralise

    assert [neutralise(v) for v in ("=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\rx", "Atelier", "1,50")] == \
        ["'=1+1", "'+33", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "Atelier", "1,50"]


def test_the_queue_filters_by_call_and_by_line_and_links_the_company(pdl, uow_factory):
    officer = _client(pdl, "agent.pays-de-la-loire")
    with uow_factory() as uow:
        call = uow.session.scalar(select(m.Dossier.call_code).where(m.Dossier.line == 3, m.Dossier.call_code.is_not(None)))
        expected = set(uow.session.scalars(select(m.Dossier.reference).where(
            m.Dossier.call_code == call, m.Dossier.line == 3, m.Dossier.status.notin_(("closed", "rejected", "withdrawn", "lapsed")))))
        others = set(uow.session.scalars(select(m.Dossier.reference).where(m.Dossier.programme_id == "pdl-ami-idf-exemple"))) - expected
    page = officer.get(f"/ui/dossiers?call={call}&line=3")
    assert page.status_code == 200 and 'id="call"' in page.text and 'id="line"' in page.text
    shown = set(re.findall(r'>(PDL-\d{4}-\d{6})<', page.text))
    assert shown == expected
    assert not shown & others
    assert f"Appel {call}" in page.text and "/ui/entreprises/" in page.text


def test_a_nouvelle_aquitaine_company_page_shows_its_plan_and_aid_dossiers(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    as_of = datetime(2025, 6, 15, 9, 0, tzinfo=PARIS)
    load_demo(uow_factory, dossiers=4, seed=5, pdl=0, naq_companies=12, as_of=as_of)
    app = create_standalone_app(uow_factory=uow_factory, clock=FrozenClock(as_of), secret_key=SECRET)
    with uow_factory() as uow:
        plan_id, n = uow.session.execute(select(m.Dossier.plan_id, func.count()).where(m.Dossier.plan_id.is_not(None))
                                         .group_by(m.Dossier.plan_id).order_by(func.count().desc())).first()
        plan = uow.dossier(plan_id)
        plan_ref = plan.reference
        siren, refs = plan.company_facts["siren"], set(uow.session.scalars(
            select(m.Dossier.reference).where(m.Dossier.plan_id == plan_id)))
    officer = _client(app, "agent.nouvelle-aquitaine")
    dossier_page = officer.get(f"/ui/dossiers/{plan_id}")
    assert f'/ui/entreprises/{siren}' in dossier_page.text
    page = officer.get(f"/ui/entreprises/{siren}")
    assert page.status_code == 200 and "Parcours de l'entreprise" in page.text
    assert "Programme d'exemple — chiffres non officiels" in unescape(page.text)
    assert refs <= set(re.findall(r'>(NAQ-\d{4}-\d{6})<', page.text)) and len(refs) == n
    assert f"Plan de progrès du dossier {plan_ref}" in page.text and 'id="de-minimis"' in page.text
    # an officer of another region does not see this company
    assert _client(app, "agent.occitanie").get(f"/ui/entreprises/{siren}").status_code == 404


def test_finance_sees_the_loans_being_repaid_oldest_unpaid_instalment_first(pdl, uow_factory):
    finance = _client(pdl, "finances.pays-de-la-loire")
    page = finance.get("/ui/paiements?status=remboursements")
    assert page.status_code == 200 and "Remboursements de prêts" in page.text
    with uow_factory() as uow:
        owed = uow.session.scalars(select(m.Dossier).where(m.Dossier.status.in_(("in_repayment", "in_default")))
                                   .order_by(m.Dossier.loan_next_due_on, m.Dossier.id)).all()
        late = next(d for d in owed if d.status == "in_default")
        late_by = (TODAY - late.loan_next_due_on).days
        late_due = amount_due(plan_of(late), repayments_of(uow.session, late.id), TODAY)
        references, late_reference = [d.reference for d in owed], late.reference
    shown = re.findall(r'<a href="/ui/dossiers/\d+">([^<]+)</a>', page.text)
    assert shown == references  # every loan still owed, the oldest unpaid instalment first
    row = page.text[page.text.index(late_reference):].split("</tr>")[0]
    assert "défaut de remboursement" in row and f"en retard de {late_by} j" in row
    assert f"{late_due:,.2f}".replace(",", "\u202f").replace(".", ",") in row.replace("\xa0", "\u202f")
    officer = _client(pdl, "agent.occitanie")
    assert "Aucun prêt en remboursement dans votre périmètre." in officer.get("/ui/paiements?status=remboursements").text


def test_finance_reviews_a_claim_of_investment_invoices_given_as_amounts(pdl, uow_factory):
    with uow_factory() as uow:
        claim = next(c for c in uow.session.scalars(select(m.PaymentClaim).order_by(m.PaymentClaim.id))
                     if c.invoices and "amount" in c.invoices[0])
        claim_id, first = claim.id, claim.invoices[0]
    page = _client(pdl, "finances.pays-de-la-loire").get(f"/ui/paiements/{claim_id}")
    assert page.status_code == 200
    invoices = page.text[page.text.index('id="invoices"'):].split("</table>")[0]
    amount = f"{Decimal(first['amount']):,.2f}".replace(",", "\xa0").replace(".", ",")
    assert amount in invoices and "None" not in page.text


def test_every_list_of_example_dossiers_says_its_figures_are_not_official(pdl):
    """An officer reading the queue, the loan repayments or the sessions of an example programme
    is told so, as on each dossier's page; an Occitanie list (an official programme) is not."""
    notice = "Cette page comprend des dossiers de programmes d'exemple — chiffres non officiels"
    officer = _client(pdl, "agent.pays-de-la-loire")
    for path in ("/ui/dossiers", "/ui/seances"):
        assert notice in html.unescape(officer.get(path).text), path
    finance = _client(pdl, "finances.pays-de-la-loire")
    assert notice in html.unescape(finance.get("/ui/paiements?status=remboursements").text)
    assert notice not in html.unescape(_client(pdl, "agent.occitanie").get("/ui/dossiers").text)


def test_a_pays_de_la_loire_dossier_shows_its_aid_by_line_and_instrument_with_the_loans_terms(pdl, uow_factory):
    """The « Montants » box of a line with instruments reads as its programme: the line's name,
    investments (not « 0 j × 0,00 € »), the subsidy and its rate, the loan with its rate, its
    schedule and its gross grant equivalent; the rules' reasons in French numbers."""
    with uow_factory() as uow:
        d = next(x for x in uow.session.scalars(select(m.Dossier).where(
            m.Dossier.programme_id == "pdl-ami-idf-exemple", m.Dossier.voted.is_not(None)).order_by(m.Dossier.id))
            if Decimal(x.voted.get("loan_total", "0")) > 0)
        dossier_id, line = d.id, d.voted["lines"][0]
        programme = uow.catalogue.get(d.programme_id, d.programme_version)
    page = html.unescape(_client(pdl, "agent.pays-de-la-loire").get(f"/ui/dossiers/{dossier_id}").text)
    box = re.sub(r"[ \t\n]+", " ", re.sub(r"<[^>]+>", " ", re.search(
        r'<table class="money" id="money-by-instrument">.*?</table>', page, re.S).group(0)))
    assert programme.phase(line["phase"]).name in box and "0 j ×" not in box
    assert fr_euros(line["instruments"]["loan"]) in box
    terms = line["loan"]
    assert f"{terms['instalments']} échéances trimestrielles après {terms['deferral_months']} mois de différé" in box
    assert ("à taux zéro" in box) == (Decimal(terms["annual_rate"]) == 0)
    assert "équivalent-subvention brut" in box
    assert "plafonné(e)" not in page and not re.search(r"\d\.\d{2} %", page)
