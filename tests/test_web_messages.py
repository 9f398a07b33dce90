"""Messagerie, annotations and expert opinions in the workspace, through HTTP (the pages and the
API of the same application): each side sees the other's message and its unread badge clears,
the agents' annotations reach neither the company's page nor its API, a message over the size
limit is refused beside its form, and an expert answers once through the link of its e-mail."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_web_pages import client_for, csrf_of, text_of
from web_support import PASSWORD, SECRET, World, seed_users, small_pdf, use_fast_passwords

from db import models as m
from db import models_messages as mm
from notifications.fake import InMemorySender
from services.delivery import deliver
from services.storage import MAX_UPLOAD_BYTES


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    return w


@pytest.fixture
def app(world):
    from api.app import create_app

    return create_app(uow_factory=world.uow_factory, clock=world.clock, secret_key=SECRET)


def post_message(client, dossier_id, body, files=(), thread=None):
    page = client.get(f"/ui/dossiers/{dossier_id}")
    data = {"csrf_token": csrf_of(page.text), "body": body, **({"thread": thread} if thread else {})}
    return client.post(f"/ui/dossiers/{dossier_id}/messages", data=data,
                       files=[("attachments", f) for f in files] or None)


def api_token(app, username):
    client = TestClient(app)
    response = client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client, {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_the_officer_and_the_company_exchange_messages_and_each_unread_badge_clears_once_read(app, world):
    did = world.dossier("diagnostic")
    officer, company = client_for(app, "agent.occitanie"), client_for(app, "entreprise.garonne")
    sent = post_message(officer, did, "Merci de nous transmettre le bilan 2021.", thread="applicant")
    assert sent.status_code == 303
    queue = text_of(company.get("/ui/dossiers").text)
    assert "1 message non lu" in queue
    page = text_of(company.get(f"/ui/dossiers/{did}").text)
    assert "Merci de nous transmettre le bilan 2021." in page and "Message de la Région à l'entreprise." in page
    assert "Messagerie 1 non lu" in page and "nouveau" in page  # shown as new the first time
    assert "nouveau" not in text_of(company.get(f"/ui/dossiers/{did}").text).split("Messagerie", 1)[1]
    assert "1 message non lu" not in text_of(company.get("/ui/dossiers").text)
    answer = post_message(company, did, "Voici le bilan.", files=[("bilan-2021.pdf", small_pdf("Bilan 2021"),
                                                                   "application/pdf")])
    assert answer.status_code == 303
    assert "1 message non lu" in text_of(officer.get("/ui/dossiers").text)
    html = officer.get(f"/ui/dossiers/{did}").text
    assert "Voici le bilan." in text_of(html) and "bilan-2021.pdf" in html
    # The company's name already carries its brackets: its role follows a dash, not a second pair.
    shown = text_of(html)
    assert ") (entreprise)" not in shown, shown[max(0, shown.find(") (entreprise)") - 200):shown.find(") (entreprise)") + 40]
    assert "(Atelier Garonne SAS) — entreprise" in shown
    link = html.split('href="/ui/dossiers/%d/messages/pieces/' % did)[1].split('"')[0]
    assert officer.get(f"/ui/dossiers/{did}/messages/pieces/{link}").content.startswith(b"%PDF-")
    assert "1 message non lu" not in text_of(officer.get("/ui/dossiers").text)
    # The API reads the same exchange; an auditor's API reads, never writes.
    client, headers = api_token(app, "entreprise.garonne")
    listed = client.get(f"/dossiers/{did}/messages", headers=headers).json()
    assert [x["body"] for x in listed] == ["Merci de nous transmettre le bilan 2021.", "Voici le bilan."]
    client, headers = api_token(app, "audit.occitanie")
    assert client.post(f"/dossiers/{did}/messages", data={"body": "Contrôle."}, headers=headers).status_code == 403


def test_a_message_over_the_size_limit_is_refused_beside_its_form_and_nothing_is_written(app, world):
    did = world.dossier("diagnostic")
    company = client_for(app, "entreprise.garonne")
    with world.uow_factory() as uow:
        before = (uow.session.scalar(select(func.count()).select_from(mm.DossierMessage)),
                  uow.session.scalar(select(func.count()).select_from(m.Event)))
    big = b"%PDF-1.4\n" + b"0" * MAX_UPLOAD_BYTES
    refused = post_message(company, did, "Le rapport complet.", files=[("rapport.pdf", big, "application/pdf")])
    assert refused.status_code == 422
    text = text_of(refused.text)
    assert "règle « taille du fichier »" in text and "« rapport.pdf » dépasse la taille maximale" in text
    assert "Le rapport complet." in refused.text  # the form keeps what was typed
    with world.uow_factory() as uow:
        assert (uow.session.scalar(select(func.count()).select_from(mm.DossierMessage)),
                uow.session.scalar(select(func.count()).select_from(m.Event))) == before


def test_annotations_are_shown_to_agents_and_never_to_the_company_on_its_page_or_its_api(app, world):
    did = world.dossier("diagnostic")
    officer = client_for(app, "agent.occitanie")
    page = officer.get(f"/ui/dossiers/{did}")
    done = officer.post(f"/ui/dossiers/{did}/annotations",
                        data={"csrf_token": csrf_of(page.text), "body": "Dirigeant injoignable, relancer lundi."})
    assert done.status_code == 303
    assert "Dirigeant injoignable" in officer.get(f"/ui/dossiers/{did}").text
    for username in ("entreprise.garonne", "cabinet.midi"):
        html = client_for(app, username).get(f"/ui/dossiers/{did}").text
        assert "Dirigeant injoignable" not in html and "Annotation interne" not in html and "Annotations internes" not in html
        client, headers = api_token(app, username)
        events = client.get(f"/dossiers/{did}/events", headers=headers).json()
        assert "annotate" not in [e["command"] for e in events]
        assert client.get(f"/dossiers/{did}/annotations", headers=headers).status_code == 403
    client, headers = api_token(app, "audit.occitanie")
    assert [n["body"] for n in client.get(f"/dossiers/{did}/annotations", headers=headers).json()] \
        == ["Dirigeant injoignable, relancer lundi."]


def test_an_expert_gives_an_opinion_through_the_link_of_its_mail_and_the_officer_sees_it(app, world):
    did = world.dossier("diagnostic")
    officer = client_for(app, "agent.occitanie")
    page = officer.get(f"/ui/dossiers/{did}")
    invited = officer.post(f"/ui/dossiers/{did}/experts", data={
        "csrf_token": csrf_of(page.text), "expert_name": "Dr Bernard", "expert_email": "bernard@expert.example",
        "expert_kind": "outside"})
    assert invited.status_code == 303
    sender = InMemorySender()
    deliver(uow_factory=world.uow_factory, sender=sender, clock=world.clock)
    mail = sender.sent_to("bernard@expert.example")[0]
    link = next(w for w in mail.text.split() if "/ui/avis/" in w)
    path = link.split("testserver", 1)[1]
    expert = TestClient(app, follow_redirects=False)
    summary = expert.get(path)
    assert summary.status_code == 200
    text = text_of(summary.text)
    assert "Atelier Garonne SAS" in text and "RIB" not in text and "attestation de régularité fiscale" not in text
    given = expert.post(path, data={"csrf_token": csrf_of(summary.text), "opinion": "reserved",
                                    "text": "Pertinent, mais le coût journalier est élevé."})
    assert given.status_code == 200 and "Avis enregistré" in given.text
    seen = text_of(officer.get(f"/ui/dossiers/{did}").text)
    assert "avis réservé" in seen and "le coût journalier est élevé" in seen
    again = expert.post(path, data={"csrf_token": csrf_of(summary.text), "opinion": "favourable", "text": "Oui."})
    assert again.status_code == 410 and "déjà servi" in again.text


def test_an_expired_or_tampered_expert_link_gets_a_french_page_and_writes_nothing(app, world):
    did = world.dossier("diagnostic")
    officer = client_for(app, "agent.occitanie")
    page = officer.get(f"/ui/dossiers/{did}")
    officer.post(f"/ui/dossiers/{did}/experts", data={
        "csrf_token": csrf_of(page.text), "expert_name": "Mme Expert", "expert_email": "expert@example.fr"})
    with world.uow_factory() as uow:
        body = uow.session.scalars(select(m.Notification.body_text).where(m.Notification.kind == "expert_invitation")).one()
        events = uow.session.scalar(select(func.count()).select_from(m.Event))
    path = next(w for w in body.split() if "/ui/avis/" in w).split("testserver", 1)[1]
    expert = TestClient(app, follow_redirects=False)
    form = expert.get(path)
    tampered = expert.get(path[:-3] + "xyz")
    assert tampered.status_code == 403 and "modifié ou mal recopié" in tampered.text
    world.clock.advance(days=16)
    expired = expert.get(path)
    assert expired.status_code == 410 and "Ce lien a expiré le" in text_of(expired.text)
    posted = expert.post(path, data={"csrf_token": csrf_of(form.text), "opinion": "favourable", "text": "Oui."})
    assert posted.status_code == 410
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(m.Event)) == events


def test_an_empty_message_is_refused_in_french_naming_the_field_and_the_rule(app, world):
    did = world.dossier("diagnostic")
    company = client_for(app, "entreprise.garonne")
    refused = post_message(company, did, "   ")
    assert refused.status_code == 422
    assert ("Refusé — règle « saisie invalide » (champ « message ») : Message : le message est vide — écrivez un "
            "texte. Rien n'a été modifié.") in text_of(refused.text)


def test_a_message_sent_again_with_its_idempotency_key_is_written_and_notified_once(app, world):
    did = world.dossier("diagnostic")
    client, headers = api_token(app, "entreprise.garonne")
    keyed = {**headers, "Idempotency-Key": "message-bilan-2021"}
    files = [("attachments", ("bilan-2021.pdf", small_pdf("Bilan 2021"), "application/pdf"))]
    first = client.post(f"/dossiers/{did}/messages", data={"body": "Voici le bilan."}, files=files, headers=keyed)
    assert first.status_code == 201, first.text
    # The network dropped the answer: the company's software sends the same request again.
    again = client.post(f"/dossiers/{did}/messages", data={"body": "Voici le bilan."}, files=files, headers=keyed)
    assert (again.status_code, again.json()) == (201, first.json())
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(mm.DossierMessage)) == 1
        assert uow.session.scalar(select(func.count()).select_from(m.Event)
                                  .where(m.Event.command == "send_message")) == 1
        assert uow.session.scalar(select(func.count()).select_from(m.Notification)
                                  .where(m.Notification.kind == "message_received")) <= 1
    # The same key for another text is refused, naming the header, and writes nothing.
    other = client.post(f"/dossiers/{did}/messages", data={"body": "Un autre texte."}, headers=keyed)
    assert other.status_code == 422 and other.json()["rule"] == "idempotency_key_reused"
    assert other.json()["field"] == "Idempotency-Key"
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(mm.DossierMessage)) == 1


def test_an_annotation_or_an_assignment_sent_again_with_its_key_applies_once(app, world):
    did = world.dossier("diagnostic")
    client, headers = api_token(app, "agent.occitanie")
    keyed = {**headers, "Idempotency-Key": "note-1"}
    note = {"body": "Dirigeant injoignable, relancer lundi."}
    first = client.post(f"/dossiers/{did}/annotations", json=note, headers=keyed)
    assert first.status_code == 201, first.text
    assert client.post(f"/dossiers/{did}/annotations", json=note, headers=keyed).json() == first.json()
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(mm.DossierAnnotation)) == 1
    from services.demo_teams import seed_demo_teams

    seed_demo_teams(world.uow_factory, world.clock)  # a second officer, Julien Fabre
    client, headers = api_token(app, "cheffe.occitanie")
    keyed = {**headers, "Idempotency-Key": "routage-1"}
    routed = {"officer": "agent2.occitanie", "note": "Il connaît l'entreprise."}
    taken = client.post(f"/dossiers/{did}/assignment", json=routed, headers=keyed)
    assert taken.status_code == 200, taken.text
    retried = client.post(f"/dossiers/{did}/assignment", json=routed, headers=keyed)
    assert (retried.status_code, retried.json()) == (200, taken.json())
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(m.Event)
                                  .where(m.Event.dossier_id == did, m.Event.command == "assign_officer")) == 1
