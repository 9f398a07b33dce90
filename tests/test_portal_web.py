"""The applicant portal through HTTP (no browser): the candidacy form step by step with a refused
step keeping what was typed, the live check, the pieces and the submission; the letter's link to
the page where the company answers a document request; and the consultants' need-to-know rule on
the web page, the web download and the API, per role."""
from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from portal_support import CALL_OPEN, COMPANY_FORM, DE_MINIMIS_FORM, LOIRE_USER, PDL, PROJECT_FORM
from sqlalchemy import select
from web_support import PASSWORD, SECRET, World, seed_users, small_pdf, use_fast_passwords

from db import models as m
from services import commands
from services.clock import FrozenClock
from services.users import create_user
from web.app import create_standalone_app


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def signed_in(app, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/ui/login")
    response = client.post("/ui/login", data={"username": username, "password": PASSWORD,
                                              "csrf_token": csrf_of(page.text), "next": ""})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def portal(uow_factory, monkeypatch):
    """The workspace on a day AMI-2020-2 of the Pays de la Loire example is open, with the demo
    accounts and a Pays de la Loire company's account."""
    use_fast_passwords(monkeypatch)
    clock = FrozenClock(CALL_OPEN)
    seed_users(uow_factory, clock)
    with uow_factory() as uow:
        create_user(uow=uow, clock=clock, password=PASSWORD, **LOIRE_USER)
    return create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET), clock


def _post(client, path: str, data: dict, files=None):
    page = client.get(path if not path.endswith("/depot") else path.replace("/depot", "/etapes/depot"))
    return client.post(path, data={**data, "csrf_token": csrf_of(page.text)}, files=files)


def _start(client) -> str:
    home = client.get("/ui/portail")
    assert home.status_code == 200
    assert "AMI Industrie du futur (exemple)" in text_of(home.text)
    started = client.post("/ui/portail/candidatures", data={"programme": PDL, "csrf_token": csrf_of(home.text)})
    assert started.status_code == 303
    resumed = client.get(started.headers["location"])
    assert resumed.headers["location"].endswith("/etapes/entreprise")
    return resumed.headers["location"].rsplit("/etapes/", 1)[0]


def test_a_company_files_a_candidacy_step_by_step_a_bad_siren_refused_beside_its_field(portal, uow_factory):
    app, clock = portal
    company = signed_in(app, "entreprise.loire")
    base = _start(company)
    refused = _post(company, f"{base}/etapes/entreprise", {**COMPANY_FORM, "siren": "552 100 555"})
    assert refused.status_code == 422
    # The message is beside the field, tied to it, French, naming the field and the rule…
    error = re.search(r'<p class="error" id="f-siren-error">([^<]+)</p>', refused.text).group(1)
    assert unescape(error).startswith("SIREN : Le SIREN 552100555 ne respecte pas la clé de Luhn")
    assert "règle « SIREN invalide »" in unescape(error)
    assert re.search(r'id="f-siren"[^>]*aria-describedby="[^"]*f-siren-error"', refused.text)
    # … and what was typed is kept.
    assert 'value="552 100 555"' in refused.text and 'value="850 000,00"' in refused.text
    moved = _post(company, f"{base}/etapes/entreprise", COMPANY_FORM)
    assert moved.headers["location"].endswith("/etapes/projet")
    assert _post(company, f"{base}/etapes/projet", PROJECT_FORM).headers["location"].endswith("/etapes/de_minimis")
    made = _post(company, f"{base}/etapes/de_minimis", DE_MINIMIS_FORM)
    assert made.headers["location"].endswith("/etapes/pieces")
    pieces = company.get(made.headers["location"])
    assert "6 pièces à déposer" in text_of(pieces.text)
    reference = re.search(r"Dossier ([A-Z]{3}-\d{4}-\d{6}) \(brouillon\)", text_of(pieces.text)).group(1)
    wrong = _post(company, f"/ui/portail/dossiers/{reference}/pieces", {"kind": "rib", "back": "candidature"},
                  files={"file": ("rib.pdf", b"not a pdf at all", "application/pdf")})
    assert wrong.status_code == 422
    assert re.search(r'<p class="error" id="f-rib-error" role="alert">Refusé — type de fichier non accepté', wrong.text)
    assert 'href="#f-file-rib"' in wrong.text and "6 pièces à déposer" in text_of(wrong.text)
    with uow_factory() as uow:
        kinds = uow.catalogue.latest(PDL).documents.candidacy
    for kind in kinds:
        sent = _post(company, f"/ui/portail/dossiers/{reference}/pieces", {"kind": kind, "back": "candidature"},
                     files={"file": (f"{kind}.pdf", small_pdf(kind), "application/pdf")})
        assert sent.status_code == 303, sent.text
    assert "Toutes les pièces sont déposées." in text_of(company.get(f"{base}/etapes/pieces").text)
    recap = text_of(company.get(f"{base}/etapes/depot").text)
    assert "12 500,50 €" in recap and "PME" in recap
    done = _post(company, f"{base}/depot", {})
    assert done.headers["location"] == f"/ui/portail/dossiers/{reference}"
    follow = text_of(company.get(done.headers["location"]).text)
    assert "candidature déposée" in follow and "chargé(e) de mission" in follow
    with uow_factory() as uow:
        dossier = uow.session.scalar(select(m.Dossier).where(m.Dossier.reference == reference))
        assert dossier.status == "submitted" and dossier.call_code == "AMI-2020-2"


def test_the_form_checks_the_siren_as_it_is_typed_with_the_servers_rule(portal):
    app, _ = portal
    company = signed_in(app, "entreprise.loire")
    base = _start(company)
    wrong = company.get(f"{base}/controle", params={"champ": "siren", "siren": "552100555"})
    assert "clé de Luhn" in unescape(wrong.text) and 'class="error"' in wrong.text
    assert company.get(f"{base}/controle", params={"champ": "siren", "siren": "552 100 554"}).text == ""
    size = company.get(f"{base}/controle", params={"champ": "employees", "employees": "320"})
    assert "ETI" in size.text
    amount = company.get(f"{base}/controle", params={"champ": "equity", "equity": "12 500,50"})
    assert "12\u00a0500,50\u00a0€" in unescape(amount.text)


def test_a_draft_is_resumed_after_signing_out_at_the_step_left(portal):
    app, _ = portal
    company = signed_in(app, "entreprise.loire")
    base = _start(company)
    _post(company, f"{base}/etapes/entreprise", COMPANY_FORM)
    again = signed_in(app, "entreprise.loire")
    home = again.get("/ui/portail")
    assert "Reprendre la candidature" in text_of(home.text) and "« Le projet et les montants »" in text_of(home.text)
    assert again.get(base).headers["location"].endswith("/etapes/projet")
    assert 'value="Loire Composites SAS"' in again.get(f"{base}/etapes/entreprise").text


def test_only_companies_use_the_portal_and_a_draft_is_its_accounts_own(portal):
    app, _ = portal
    company = signed_in(app, "entreprise.loire")
    base = _start(company)
    assert signed_in(app, "agent.pays-de-la-loire").get("/ui/portail").status_code == 403
    assert signed_in(app, "entreprise.garonne").get(f"{base}/etapes/entreprise").status_code == 404


def test_the_letter_asking_for_pieces_links_to_the_page_where_the_company_answers_it(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    did = world.dossier("submitted")
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=did)
    world.run(commands.request_documents, "agent.occitanie", dossier_id=did, kinds=["financial_statement"])
    with uow_factory() as uow:
        reference = uow.dossier(did).reference
        letter = uow.session.execute(select(m.Notification.body_text, m.Notification.body_html).where(
            m.Notification.dossier_id == did, m.Notification.kind == "documents_requested")).one()
    link = f"http://127.0.0.1:8000/ui/portail/dossiers/{reference}/pieces"
    assert link in letter.body_text and f'href="{link}"' in letter.body_html
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    company = signed_in(app, "entreprise.garonne")
    page = company.get(link.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200
    assert "dernière liasse fiscale (exercice d'au moins 12 mois) — à déposer" in text_of(page.text)
    sent = company.post(f"/ui/portail/dossiers/{reference}/pieces",
                        data={"kind": "financial_statement", "csrf_token": csrf_of(page.text)},
                        files={"file": ("liasse.pdf", small_pdf("Liasse fiscale 2021"), "application/pdf")})
    assert sent.status_code == 303
    after = text_of(company.get(sent.headers["location"]).text)
    assert "les demandes en cours sont toutes satisfaites" in after
    with uow_factory() as uow:
        request = uow.session.scalar(select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == did))
        assert request.status == "fulfilled"


def test_a_refused_upload_says_why_beside_the_piece_and_writes_nothing(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    did = world.dossier("submitted")
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=did)
    world.run(commands.request_documents, "agent.occitanie", dossier_id=did, kinds=["rib"])
    with uow_factory() as uow:
        reference = uow.dossier(did).reference
        before = len(uow.session.scalars(select(m.Document.id).where(m.Document.dossier_id == did)).all())
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    company = signed_in(app, "entreprise.garonne")
    page = company.get(f"/ui/portail/dossiers/{reference}/pieces")
    refused = company.post(f"/ui/portail/dossiers/{reference}/pieces", data={"kind": "rib", "csrf_token": csrf_of(page.text)},
                           files={"file": ("rib.exe", b"MZ\x90\x00 not a pdf", "application/pdf")})
    assert refused.status_code == 422
    assert re.search(r'id="f-rib-error"[^>]*>Refusé — type de fichier non accepté \(champ « [^»]+ », règle « type de fichier »\)',
                     unescape(refused.text))
    with uow_factory() as uow:
        assert len(uow.session.scalars(select(m.Document.id).where(m.Document.dossier_id == did)).all()) == before


# -- the consultants' need-to-know rule, per role ---------------------------------------------------

@pytest.fixture
def assigned(uow_factory, monkeypatch):
    """An Occitanie dossier in diagnostic, assigned to Cabinet Midi Conseil (`cabinet.midi`), with
    its candidacy pieces (RIB and certificates among them) and the consultant's report."""
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    did = world.dossier("diagnostic")
    world.run(commands.provide_documents, "cabinet.midi", dossier_id=did, kinds=["diagnostic_report"])
    with uow_factory() as uow:
        docs = {d.kind: d.id for d in uow.session.scalars(select(m.Document).where(m.Document.dossier_id == did))}
    return world, did, docs


def _api_token(client, username: str) -> dict:
    response = client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.mark.parametrize("username, sees_rib", [("cabinet.midi", False), ("entreprise.garonne", True),
                                                ("agent.occitanie", True), ("audit.occitanie", True)])
def test_consultants_alone_are_refused_the_rib_and_the_certificates_on_the_page_the_download_and_the_api(
        assigned, username, sees_rib):
    from api.app import create_app

    world, did, docs = assigned
    app = create_app(uow_factory=world.uow_factory, clock=world.clock, secret_key=SECRET)
    web = signed_in(app, username)
    page = web.get(f"/ui/dossiers/{did}")
    assert page.status_code == 200
    hidden = ("rib", "tax_certificate", "social_certificate")
    for kind in hidden:
        link = f"/ui/dossiers/{did}/documents/{docs[kind]}/fichier"
        assert (link in page.text) is sees_rib, kind
        download = web.get(link)
        assert download.status_code == (200 if sees_rib else 403), kind
        if not sees_rib:
            assert "consultant_need_to_know" in download.text
    # The pieces of the mission stay there for everyone.
    report = f"/ui/dossiers/{did}/documents/{docs['diagnostic_report']}/fichier"
    assert report in page.text and web.get(report).status_code == 200
    if not sees_rib:
        assert "Pièces non communiquées au prestataire" in text_of(page.text)
    api = TestClient(app)
    headers = _api_token(api, username)
    listed = {d["kind"] for d in api.get(f"/dossiers/{did}/documents", headers=headers).json()}
    assert ("rib" in listed) is sees_rib and "diagnostic_report" in listed
    for kind in hidden:
        content = api.get(f"/dossiers/{did}/documents/{docs[kind]}/content", headers=headers)
        metadata = api.get(f"/dossiers/{did}/documents/{docs[kind]}", headers=headers)
        if sees_rib:
            assert content.status_code == 200 and metadata.status_code == 200
        else:
            assert content.status_code == 403 and content.json()["rule"] == "consultant_need_to_know"
            assert metadata.status_code == 403


def test_a_voted_company_is_asked_for_its_payment_claim_and_the_approval_letter_links_there(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    did = world.dossier("approved")
    with uow_factory() as uow:
        reference = uow.dossier(did).reference
        letter = uow.session.scalar(select(m.Notification.body_text).where(
            m.Notification.dossier_id == did, m.Notification.kind == "vote_result"))
    assert f"/ui/portail/dossiers/{reference}#paiements" in letter
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    page = signed_in(app, "entreprise.garonne").get(f"/ui/portail/dossiers/{reference}")
    said = text_of(page.text)
    assert "voté / conventionné" in said
    assert "Une demande de paiement est à déposer" in said and "Qui a le dossier entreprise" in said


def test_a_company_follows_its_loan_schedule_and_the_repayment_due(uow_factory, monkeypatch):
    from rules.loans import amount_due
    from services.demo import DEMO_NOW, load_demo
    from services.loans import plan_of, repayments_of
    from web.format import eur

    use_fast_passwords(monkeypatch)
    load_demo(uow_factory, dossiers=12, seed=5, pdl=28)
    clock = FrozenClock(DEMO_NOW)
    with uow_factory() as uow:
        owing = [(d, amount_due(plan_of(d), repayments_of(uow.session, d.id), DEMO_NOW.date()))
                 for d in uow.session.scalars(select(m.Dossier).where(m.Dossier.status == "in_repayment")
                                              .order_by(m.Dossier.id))]
        dossier, due = next((d, due) for d, due in owing if due > 0)
        reference, siren, instalments = dossier.reference, dossier.company_facts["siren"], len(plan_of(dossier))
        create_user(uow=uow, clock=clock, password=PASSWORD, username="entreprise.pret", role="applicant",
                    siren=siren, display_name="Compte de test")
        letters = uow.session.scalars(select(m.Notification.body_text).where(
            m.Notification.kind.in_(("repayment_due", "repayment_reminder", "default_notice")))).all()
    assert letters and all("/ui/portail/dossiers/" in body and "#remboursements" in body for body in letters)
    app = create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET)
    page = signed_in(app, "entreprise.pret").get(f"/ui/portail/dossiers/{reference}")
    assert page.status_code == 200
    assert len(re.findall(r"<tr><th scope=\"row\">\d+</th>", page.text.split('id="portal-schedule"')[1])) == instalments
    said = text_of(page.text)
    assert f"Remboursement dû ce jour : {eur(due)}".replace("\u00a0", " ") in said and "en remboursement" in said


def test_a_withdrawn_dossier_is_held_by_no_one_on_the_companys_page(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    did = world.dossier("submitted")
    world.run(commands.withdraw, "entreprise.garonne", dossier_id=did, reason="Projet reporté d'un an.")
    with uow_factory() as uow:
        reference = uow.dossier(did).reference
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    page = signed_in(app, "entreprise.garonne").get(f"/ui/portail/dossiers/{reference}")
    holder = text_of(page.text.split('id="portal-holder">', 1)[1].split("</dd>", 1)[0])
    assert holder == "personne — le dossier est terminé"
    assert "Usine (automatique)" not in text_of(page.text)
