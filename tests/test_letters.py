"""Letters and documents as PDF (issue 19, part 5): the accusé de réception with the CRPA
mentions, the decision letters with the means of appeal and the competent tribunal, the
convention above 23 000 € only, a council session's agenda and deliberations — each read back
from the PDF with pypdf — and the e-mail that carries its letter's PDF, whose text is the
e-mail's own. Over dossiers played through the services (tests/web_support.py)."""
from __future__ import annotations

import html
import io
import re
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from web_support import CONSULTANT, GARONNE, PASSWORD, SECRET, World, seed_users, use_fast_passwords

from db import models as m
from notifications.email import build_mime
from programmes.letters import letters_data, service_of
from services import commands
from services.delivery import outgoing
from web.app import create_standalone_app

NBSP = "\u00a0"


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return " ".join(text.replace(NBSP, " ").replace("\u202f", " ").split())


def _client(app, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/ui/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                          "next": ""}).status_code == 303
    return client


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    return w


@pytest.fixture
def app(world, uow_factory):
    return create_standalone_app(uow_factory=uow_factory, clock=world.clock, secret_key=SECRET)


def big_dossier(world: World, session: str = "CP-TEST-1") -> int:
    """A Garonne dossier voted 24 000,00 € of subsidies (10 days of diagnostic at 1 200 €, then
    20 days of phase 2 at 1 200 € at 50 %): above the convention threshold."""
    did = world.run(commands.submit_candidacy, "entreprise.garonne", programme_id="occitanie-prif",
                    company=GARONNE).dossier_id
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=did)
    world.run(commands.declare_eligible, "agent.occitanie", dossier_id=did, consultant=CONSULTANT,
              phase1={"days": 10, "day_rate": "1200.00"})
    world.run(commands.provide_documents, "cabinet.midi", dossier_id=did, kinds=["diagnostic_report"])
    world.run(commands.accept_diagnostic, "agent.occitanie", dossier_id=did)
    world.run(commands.provide_documents, "entreprise.garonne", dossier_id=did, kinds=["action_plan", "phase2_quote"])
    world.run(commands.submit_action_plan, "entreprise.garonne", dossier_id=did,
              phase2={"days": 20, "day_rate": "1200.00"})
    world.session_sitting_today(session)
    world.run(commands.propose_for_vote, "agent.occitanie", dossier_id=did, session=session)
    world.run(commands.record_vote, "cheffe.occitanie", dossier_id=did, session=session, outcome="approved",
              deliberation=f"{session}-D{did}")
    return did


def test_the_acknowledgement_pdf_carries_every_mention_the_crpa_requires(world, app):
    did = world.dossier("submitted")
    officer = _client(app, "agent.occitanie")
    response = officer.get(f"/ui/dossiers/{did}/lettres/accuse-de-reception.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Accusé de réception de votre candidature" in text
    assert "Atelier Garonne SAS" in text and "SIREN 732 829 320" in text
    assert "Date de réception de votre demande : 15 juin 2022." in text          # R112-5 1°
    assert "Service Industrie du Futur — Région Occitanie, Hôtel de Région, 22 boulevard du Maréchal Juin, " \
           "31406 Toulouse Cedex 9 ; téléphone : 05 61 33 50 50" in text          # R112-5 2°
    assert "Agent chargé du dossier" in text                                      # L111-2
    # Silence for two months is worth a rejection, as the programme's letters data says.
    assert service_of("occitanie-prif", "Occitanie")["silence"] == "rejection"
    assert "À défaut de décision expresse au 15 août 2022, votre demande sera réputée rejetée" in text
    assert "L. 231-4" in text
    assert "recours gracieux auprès de la Présidente ou du Président du Conseil régional d'Occitanie" in text
    assert "Tribunal administratif de Toulouse" in text and "Télérecours citoyens" in text
    assert "Le 15 juin 2022" in text
    assert "occitanie-prif" not in text and f"/{did}" not in text  # no internal id


def test_an_acknowledgement_of_an_incomplete_candidacy_lists_the_missing_pieces_and_their_deadline(world, app):
    did = world.run(commands.submit_candidacy, "entreprise.garonne", programme_id="occitanie-prif", company=GARONNE,
                    documents=["kbis", "financial_statement", "tax_certificate", "social_certificate",
                               "rib"]).dossier_id
    text = pdf_text(_client(app, "agent.occitanie").get(f"/ui/dossiers/{did}/lettres/accuse-de-reception.pdf").content)
    assert "Votre demande est incomplète. Pièces manquantes" in text
    assert "attestation de minimis" in text and "devis du prestataire référencé" in text
    assert "extrait Kbis" not in text
    # 30 days after 15 June 2022 is Friday 15 July 2022 (the programme's lapse delay).
    assert "au plus tard le 15 juillet 2022" in text and "L. 114-5" in text
    assert "À défaut de décision expresse au" not in text  # the delay runs from the last piece


def test_the_grant_letter_pdf_says_what_the_e_mail_says_with_the_means_of_appeal(world, app, uow_factory):
    did = world.dossier("approved")
    response = _client(app, "entreprise.garonne").get(f"/ui/dossiers/{did}/lettres/decision.pdf")
    assert response.status_code == 200
    assert 'filename="decision-OCC-' in response.headers["content-disposition"]
    text = pdf_text(response.content)
    with uow_factory() as uow:
        sent = uow.session.scalar(select(m.Notification).where(m.Notification.dossier_id == did,
                                                               m.Notification.kind == "vote_result"))
        letter_part, footer = sent.body_text.split("\n-- \n")
        body = " ".join(letter_part.replace("  - ", "").replace(NBSP, " ").split())
    # Every sentence of the e-mail above its footer, word for word (the PDF adds the date line and the bullets).
    laid_out = text.replace("Le 15 juin 2022 Objet", "Objet").replace("– ", "")
    for sentence in re.split(r"(?<=[.;:])\s", body):
        assert sentence in laid_out, sentence
    assert "17 500,00 €" in text and "délibération n° CP-TEST-1-D" in text
    assert "Voies et délais de recours" in text and "dans un délai de deux mois" in text
    assert "Tribunal administratif de Toulouse (68 rue Raymond IV" in text and "Télérecours citoyens" in text
    assert "convention" not in text.lower()  # 17 500 € of subsidy: no convention
    # The e-mail's footer speaks of an e-mail: the printed letter leaves it out, the e-mail keeps it.
    assert "Message envoyé automatiquement" in footer
    assert "Message envoyé automatiquement" not in text and "ne pas y répondre" not in text


def test_a_refusal_names_the_competent_tribunal_of_the_region_from_the_data_file(world, app):
    did = world.dossier("submitted")
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=did)
    world.run(commands.declare_ineligible, "agent.occitanie", dossier_id=did,
              reason="entreprise en difficulté au sens du RGEC")
    text = pdf_text(_client(app, "agent.occitanie").get(f"/ui/dossiers/{did}/lettres/decision.pdf").content)
    assert "n'a pas pu être retenue" in text and "entreprise en difficulté au sens du RGEC" in text
    tribunal = letters_data().regions["Occitanie"].tribunal
    assert f"recours contentieux devant le {tribunal}" in text
    assert "recours gracieux auprès de la Présidente ou du Président du Conseil régional d'Occitanie" in text


def test_every_programme_and_region_has_its_letters_data():
    from programmes import default_catalogue

    for programme in default_catalogue().all():
        svc = service_of(programme.id, programme.region)
        assert svc["tribunal"].startswith("Tribunal administratif de ")
        assert svc["silence"] in ("rejection", "acceptance") and svc["silence_months"] > 0


def test_the_convention_exists_only_above_23_000_euros_of_subsidy(world, app):
    small = world.dossier("approved")
    big = big_dossier(world)
    officer = _client(app, "agent.occitanie")
    for url in (f"/ui/dossiers/{small}/lettres/convention.pdf", f"/ui/dossiers/{small}/lettres/convention"):
        refused = officer.get(url)
        # Said for what it is — no convention is required —, not « Page introuvable ».
        assert refused.status_code == 409
        assert "<h1 id=\"error-title\">Convention non requise</h1>" in refused.text
        assert "Page introuvable" not in refused.text
        assert "n'excède pas 23 000,00 €" in html.unescape(refused.text).replace(NBSP, " ")
    assert 'data-letter="convention"' not in officer.get(f"/ui/dossiers/{small}").text
    page = officer.get(f"/ui/dossiers/{big}")
    assert 'data-letter="convention"' in page.text
    response = officer.get(f"/ui/dossiers/{big}/lettres/convention.pdf")
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert "Convention attributive de subvention" in text
    assert "loi n° 2000-321 du 12 avril 2000" in text and "article 10" in text and "décret n° 2001-495" in text
    assert "La Région Occitanie" in text and "l'entreprise Atelier Garonne SAS, SIREN 732 829 320" in text
    assert "subvention d'un montant maximal de 24 000,00 €" in text
    assert "phase 1 (diagnostic) : 12 000,00 €" in text and "phase 2 (plan d'action) : 12 000,00 €" in text
    assert "avances dans la limite de 70 % de l'aide de la phase, soit 8 400,00 € au plus" in text
    for heading in ("Article 1 — Objet", "Article 3 — Modalités de versement", "Article 4 — Obligations du bénéficiaire",
                    "Article 5 — Justification des dépenses", "Article 6 — Reversement"):
        assert heading in text
    assert "titre de recettes" in text and "Tribunal administratif de Toulouse" in text
    # The vote letter of that dossier announced it.
    decision = pdf_text(officer.get(f"/ui/dossiers/{big}/lettres/decision.pdf").content)
    assert "subordonné à la signature d'une convention" in decision


def test_each_list_of_the_convention_follows_the_sentence_that_introduces_it(world, app):
    big = big_dossier(world)
    text = pdf_text(_client(app, "agent.occitanie").get(f"/ui/dossiers/{big}/lettres/convention.pdf").content)

    def before(*pieces: str) -> bool:
        places = [text.index(piece) for piece in pieces]
        return places == sorted(places)

    # Article 2: the split of the subsidy comes right after « Elle se répartit ainsi : ».
    assert before("Elle se répartit ainsi :", "phase 1 (diagnostic) : 12 000,00 €",
                  "phase 2 (plan d'action) : 12 000,00 €", "Le montant définitif est calculé", "Article 3 —")
    # Article 3: the tranches right after « … sur demande du bénéficiaire : », before the next article.
    assert before("La subvention est versée par tranches, sur demande du bénéficiaire :",
                  "phase 1 (diagnostic), versement unique", "phase 2 (plan d'action), avances dans la limite",
                  "phase 2 (plan d'action), solde à la demande", "Article 4 —")
    assert "Message envoyé automatiquement" not in text


def test_a_letter_is_previewed_as_a_page_before_it_is_downloaded(world, app):
    did = world.dossier("ready_for_vote")
    officer = _client(app, "agent.occitanie")
    page = officer.get(f"/ui/dossiers/{did}")
    assert "Courriers et documents" in page.text and "projet (avant le vote)" in page.text
    preview = officer.get(f"/ui/dossiers/{did}/lettres/decision")
    assert preview.status_code == 200
    assert "Aperçu avant envoi" in preview.text and "Télécharger (PDF)" in preview.text
    assert "Voies et délais de recours" in preview.text
    # Nothing was queued by the preview; the applicant does not see a draft decision.
    assert _client(app, "entreprise.garonne").get(f"/ui/dossiers/{did}/lettres/decision.pdf").status_code == 404


def test_a_dossier_of_another_region_has_no_letter_to_download(world, app):
    did = world.dossier("approved")
    other = _client(app, "agent.nouvelle-aquitaine")
    assert other.get(f"/ui/dossiers/{did}/lettres/decision.pdf").status_code == 404


def test_the_session_agenda_and_deliberations_pdf_list_the_dossiers_and_the_votes(world, app):
    voted = world.dossier("approved", session="CP-TEST-1")
    waiting = world.dossier("ready_for_vote", session="CP-TEST-1")
    head = _client(app, "cheffe.occitanie")
    page = head.get("/ui/seances/CP-TEST-1")
    assert "Documents de la séance" in page.text
    agenda = pdf_text(head.get("/ui/seances/CP-TEST-1/ordre-du-jour.pdf").content)
    assert "Ordre du jour de la séance CP-TEST-1" in agenda and "séance du 15 juin 2022" in agenda
    assert "Parcours régional Industrie du Futur" in agenda and "occitanie-prif" not in agenda
    refs = {did: world.run(lambda **k: k["uow"].session.get(m.Dossier, did).reference, "agent.occitanie")
            for did in (voted, waiting)}
    assert refs[voted] in agenda and refs[waiting] in agenda and "17 500,00 €" in agenda
    deliberations = pdf_text(head.get("/ui/seances/CP-TEST-1/deliberations.pdf").content)
    assert f"CP-TEST-1-D{voted} {refs[voted]} Atelier Garonne SAS favorable 17 500,00 €" in deliberations
    assert "Votes : 1 favorable(s), 0 défavorable(s), 0 ajournement(s)." in deliberations
    assert f"Dossiers inscrits non encore votés : {refs[waiting]}" in deliberations


def test_a_decision_e_mail_carries_its_letter_as_a_pdf_whose_text_is_the_e_mails(world, uow_factory):
    did = world.dossier("approved")
    with uow_factory() as uow:
        row = uow.session.scalar(select(m.Notification).where(m.Notification.dossier_id == did,
                                                              m.Notification.kind == "vote_result"))
        email = outgoing(row, "usine.invalid", world.clock.now())
        message = message_from_bytes(build_mime(email, "Usine <ne-pas-repondre@usine.invalid>").as_bytes(),
                                     policy=policy.default)
        body = row.body_text
        fields = {k: getattr(row, k) for k in ("id", "dedupe_key", "recipient_address", "recipient_name", "subject",
                                               "body_text", "body_html", "template_hash")}
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename().startswith("decision-OCC-")
    text = pdf_text(attachment.get_content())
    assert "Notification de l'aide régionale votée" in text and "Voies et délais de recours" in text
    # A payment letter goes without one.
    payment = SimpleNamespace(**fields, kind="payment_issued")
    assert outgoing(payment, "usine.invalid", world.clock.now()).attachments == ()


def test_the_cli_preview_writes_the_letter_as_pdf_with_the_e_mails_words(world, uow_factory, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import services.runtime
    from cli.flows import notifications_app as cli

    did = world.dossier("ready_for_vote")
    monkeypatch.setattr(services.runtime, "default_uow_factory", lambda: uow_factory)
    target = tmp_path / "projet.pdf"
    result = CliRunner().invoke(cli, ["preview", "vote_result", "--dossier", str(did),
                                      "--at", "2022-06-15T12:00:00+02:00", "--pdf", str(target)])
    assert result.exit_code == 0, result.output
    text = pdf_text(target.read_bytes())
    assert "Le 15 juin 2022" in text and "Voies et délais de recours" in text
    assert "Nous avons le plaisir de vous informer que le Conseil régional" in result.output
    with uow_factory() as uow:  # a preview queues nothing
        assert uow.session.scalar(select(m.Notification.id).where(m.Notification.dossier_id == did,
                                                                  m.Notification.kind == "vote_result")) is None
