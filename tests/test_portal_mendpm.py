"""Mends of the applicant portal and of its messages (docs/portal.md, docs/messages.md): every
dossier of the company found in « Mon espace », the unread-message badge and the link to the
messagerie, the mistyped step's French answer, the landing page after signing in."""
from __future__ import annotations

from test_portal_web import csrf_of, signed_in, text_of
from web_support import GARONNE, SECRET, World, seed_users, use_fast_passwords

from services import commands
from web.app import create_standalone_app


def _world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    world = World(uow_factory)
    seed_users(uow_factory, world.clock)
    return world


def test_a_draft_dossier_started_outside_the_portal_is_listed_in_my_space_with_a_way_to_continue_it(
        uow_factory, monkeypatch):
    world = _world(uow_factory, monkeypatch)
    submitted = world.dossier("submitted")
    draft = world.run(commands.start_candidacy, "entreprise.garonne", programme_id="occitanie-prif",
                      company=GARONNE).dossier_id
    with uow_factory() as uow:
        refs = {did: uow.dossier(did).reference for did in (submitted, draft)}
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    company = signed_in(app, "entreprise.garonne")
    home = company.get("/ui/portail")
    page = text_of(home.text)
    assert refs[draft] in page and refs[submitted] in page
    assert "2 dossiers de l'entreprise" in page
    assert f'href="/ui/portail/dossiers/{refs[draft]}/pieces">Compléter les pièces du brouillon' in home.text
    pieces = company.get(f"/ui/portail/dossiers/{refs[draft]}/pieces")
    assert pieces.status_code == 200
    assert f'href="/ui/dossiers/{draft}">Déposer la candidature depuis la page du dossier' in pieces.text


MIB = 1024 * 1024


def _pdf_of(size: int) -> bytes:
    return b"%PDF-1.4\n" + b"0" * (size - 9)


def test_an_oversized_attachment_comes_back_beside_the_message_form_with_the_text_kept(uow_factory, monkeypatch):
    from test_web_messages import post_message
    from test_web_pages import client_for

    from api.app import create_app

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("diagnostic")
    app = create_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    company = client_for(app, "entreprise.garonne")
    refused = post_message(company, did, "Le rapport complet, en 21 Mo.",
                           files=[("rapport.pdf", _pdf_of(21 * MIB), "application/pdf")])
    assert refused.status_code == 422
    assert "Le rapport complet, en 21 Mo." in refused.text
    assert "« rapport.pdf » dépasse la taille maximale" in text_of(refused.text)


def test_the_portal_takes_a_piece_of_several_megabytes_and_refuses_one_of_21_beside_its_field(
        uow_factory, monkeypatch):
    from api.app import create_app

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("submitted")
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=did)
    world.run(commands.request_documents, "agent.occitanie", dossier_id=did, kinds=["financial_statement"])
    with uow_factory() as uow:
        reference = uow.dossier(did).reference
    app = create_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    company = signed_in(app, "entreprise.garonne")
    path = f"/ui/portail/dossiers/{reference}/pieces"
    too_big = company.post(path, data={"kind": "financial_statement", "csrf_token": csrf_of(company.get(path).text)},
                           files={"file": ("liasse.pdf", _pdf_of(21 * MIB), "application/pdf")})
    assert too_big.status_code == 422
    assert "fichier trop volumineux : 20 Mo au plus" in text_of(too_big.text)
    taken = company.post(path, data={"kind": "financial_statement", "csrf_token": csrf_of(company.get(path).text)},
                         files={"file": ("liasse.pdf", _pdf_of(5 * MIB), "application/pdf")})
    assert taken.status_code == 303


def test_a_body_far_over_the_limit_is_refused_with_a_french_page_in_the_workspace_and_json_in_the_api(
        uow_factory, monkeypatch):
    from test_web_messages import api_token
    from test_web_pages import client_for

    from api.app import create_app

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("diagnostic")
    app = create_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    huge = _pdf_of(41 * MIB)
    company = client_for(app, "entreprise.garonne")
    csrf = csrf_of(company.get(f"/ui/dossiers/{did}").text)
    page = company.post(f"/ui/dossiers/{did}/messages", data={"csrf_token": csrf, "body": "Trop gros."},
                        files=[("attachments", ("rapport.pdf", huge, "application/pdf"))])
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert "Envoi refusé : trop volumineux" in page.text and "20 Mo au plus" in page.text
    client, headers = api_token(app, "entreprise.garonne")
    api = client.post(f"/dossiers/{did}/documents", data={"kind": "financial_statement"}, headers=headers,
                      files={"file": ("liasse.pdf", _pdf_of(21 * MIB), "application/pdf")})
    assert api.status_code == 413 and api.json()["rule"] == "file_too_large"


def test_the_expert_reads_who_asked_for_the_opinion_by_the_persons_name_in_the_mail_and_on_the_page(
        uow_factory, monkeypatch):
    from fastapi.testclient import TestClient
    from test_web_pages import client_for

    from api.app import create_app
    from notifications.fake import InMemorySender
    from services.delivery import deliver

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("diagnostic")
    app = create_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    officer = client_for(app, "agent.occitanie")
    page = officer.get(f"/ui/dossiers/{did}")
    assert officer.post(f"/ui/dossiers/{did}/experts", data={
        "csrf_token": csrf_of(page.text), "expert_name": "Dr Bernard", "expert_email": "bernard@expert.example",
        "expert_kind": "outside"}).status_code == 303
    sender = InMemorySender()
    deliver(uow_factory=uow_factory, sender=sender, clock=world.clock)
    mail = sender.sent_to("bernard@expert.example")[0]
    assert "Claire Martin, chargée de mission (Occitanie) sollicite votre avis" in mail.text
    assert "agent.occitanie" not in mail.text
    link = next(w for w in mail.text.split() if "/ui/avis/" in w)
    summary = text_of(TestClient(app).get(link.split("testserver", 1)[1]).text)
    assert "Demandé par Claire Martin, chargée de mission (Occitanie)" in summary
    assert "agent.occitanie" not in summary, summary[summary.find("agent.occitanie") - 200:][:300]


def test_the_portal_shows_the_unread_messages_and_links_to_the_messagerie_as_does_the_notice_email(
        uow_factory, monkeypatch):
    from sqlalchemy import select
    from test_web_messages import post_message
    from test_web_pages import client_for

    from db import models as m

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("diagnostic")
    with uow_factory() as uow:
        reference = uow.dossier(did).reference
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    officer = client_for(app, "agent.occitanie")
    assert post_message(officer, did, "Merci de préciser le planning.", thread="applicant").status_code == 303
    company = signed_in(app, "entreprise.garonne")
    messagerie = f'href="/ui/dossiers/{did}#messagerie"'
    for path in ("/ui/portail", f"/ui/portail/dossiers/{reference}"):
        html = company.get(path).text
        assert messagerie in html and "1 message non lu" in text_of(html), path
    with uow_factory() as uow:
        notice = uow.session.scalar(select(m.Notification.body_text).where(
            m.Notification.dedupe_key.startswith(f"{reference}:message:"), m.Notification.kind == "message_received"))
    assert f"Lire le message depuis votre espace en ligne : http://127.0.0.1:8000/ui/portail/dossiers/{reference}" in notice
    company.get(f"/ui/dossiers/{did}")  # read where the link leads: the badge goes
    assert "message non lu" not in text_of(company.get("/ui/portail").text)
    assert messagerie in company.get("/ui/portail").text


def test_a_message_header_does_not_repeat_the_role_a_display_name_already_says(uow_factory, monkeypatch):
    from test_web_messages import post_message
    from test_web_pages import client_for

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("diagnostic")
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    officer = client_for(app, "agent.occitanie")
    assert post_message(officer, did, "Merci de préciser le planning.", thread="applicant").status_code == 303
    assert post_message(officer, did, "Point d'étape ?", thread="consultant").status_code == 303
    page = text_of(officer.get(f"/ui/dossiers/{did}").text)
    assert "Claire Martin, chargée de mission (Occitanie)" in page
    assert "(Occitanie) (chargé(e) de mission)" not in page
    consultant = client_for(app, "cabinet.midi")
    assert post_message(consultant, did, "Planning envoyé.").status_code == 303
    assert "Cabinet Midi Conseil (prestataire référencé)" in text_of(officer.get(f"/ui/dossiers/{did}").text)


def test_a_company_signing_in_lands_on_its_space_unless_it_asked_for_another_page(uow_factory, monkeypatch):
    from fastapi.testclient import TestClient
    from web_support import PASSWORD

    world = _world(uow_factory, monkeypatch)
    did = world.dossier("submitted")
    app = create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)
    for next_, landing in (("", "/ui/portail"), (f"/ui/dossiers/{did}", f"/ui/dossiers/{did}")):
        client = TestClient(app, follow_redirects=False)
        page = client.get("/ui/login")
        signed = client.post("/ui/login", data={"username": "entreprise.garonne", "password": PASSWORD,
                                                "csrf_token": csrf_of(page.text), "next": next_})
        assert signed.status_code == 303 and signed.headers["location"] == landing
        assert client.get("/ui/").headers["location"] == "/ui/portail"
    officer = TestClient(app, follow_redirects=False)
    page = officer.get("/ui/login")
    assert officer.post("/ui/login", data={"username": "agent.occitanie", "password": PASSWORD,
                                           "csrf_token": csrf_of(page.text)}).headers["location"] == "/ui/dossiers"


def test_a_mistyped_step_address_says_in_french_which_steps_there_are(uow_factory, monkeypatch):
    from portal_support import CALL_OPEN, LOIRE_USER
    from test_portal_web import _start
    from web_support import PASSWORD

    from services.clock import FrozenClock
    from services.users import create_user

    use_fast_passwords(monkeypatch)
    clock = FrozenClock(CALL_OPEN)
    seed_users(uow_factory, clock)
    with uow_factory() as uow:
        create_user(uow=uow, clock=clock, password=PASSWORD, **LOIRE_USER)
    app = create_standalone_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET)
    company = signed_in(app, "entreprise.loire")
    base = _start(company)
    page = company.get(f"{base}/etapes/verification")
    assert page.status_code == 404
    text = text_of(page.text)
    assert "Cette étape de la candidature n'existe pas" in text
    assert "« L'entreprise » (…/etapes/entreprise)" in text and "« Vérification et dépôt » (…/etapes/depot)" in text
    assert "Champ(s) invalide(s)" not in text and "step" not in text
    assert company.get(f"{base}/etapes/entreprise").status_code == 200
