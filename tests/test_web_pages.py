"""The web workspace through HTTP (no browser): sign-in, CSRF, scope, the auditor's read-only
access, refusals that name their rule, and what each page tells about the dossiers."""
from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import PASSWORD, SECRET, World, seed_users, small_pdf, use_fast_passwords

from db import models as m
from services import commands
from web.app import create_standalone_app


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    return w


@pytest.fixture
def app(world):
    return create_standalone_app(uow_factory=world.uow_factory, clock=world.clock, secret_key=SECRET)


def client_for(app, username: str | None = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if username is not None:
        page = client.get("/ui/login")
        response = client.post("/ui/login", data={"username": username, "password": PASSWORD,
                                                  "csrf_token": csrf_of(page.text), "next": ""})
        assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def state_of(uow_factory, dossier_id: int) -> str:
    with uow_factory() as uow:
        return uow.dossier(dossier_id).status


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_a_visitor_is_sent_to_the_login_form_and_back_to_the_page_asked(app):
    client = client_for(app)
    response = client.get("/ui/dossiers?state=submitted")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Fdossiers%3Fstate%3Dsubmitted"
    page = client.get(response.headers["location"])
    assert "Connexion" in page.text and 'lang="fr"' in page.text
    signed_in = client.post("/ui/login", data={"username": "agent.occitanie", "password": PASSWORD,
                                               "csrf_token": csrf_of(page.text), "next": "/ui/dossiers?state=submitted"})
    assert signed_in.headers["location"] == "/ui/dossiers?state=submitted"


def test_the_session_cookie_is_httponly_samesite_lax_and_scoped_to_the_workspace(app):
    client = client_for(app)
    page = client.get("/ui/login")
    response = client.post("/ui/login", data={"username": "agent.occitanie", "password": PASSWORD,
                                              "csrf_token": csrf_of(page.text)})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ui" in cookie
    assert response.headers["location"] == "/ui/dossiers"


def test_a_wrong_password_is_refused_in_french_without_saying_which_part_was_wrong(app):
    client = client_for(app)
    page = client.get("/ui/login")
    response = client.post("/ui/login", data={"username": "agent.occitanie", "password": "pas le bon mot de passe",
                                              "csrf_token": csrf_of(page.text)})
    assert response.status_code == 401
    assert "Identifiant ou mot de passe incorrect" in response.text
    assert client.get("/ui/dossiers").status_code == 303


def test_each_role_lands_on_its_own_page(app):
    for username, home in (("cheffe.occitanie", "/ui/seances"), ("finances.occitanie", "/ui/paiements"),
                           ("audit.occitanie", "/ui/audit"), ("agent.occitanie", "/ui/dossiers")):
        client = client_for(app, username)
        assert client.get("/ui/").headers["location"] == home
        assert client.get(home).status_code == 200


def test_a_form_without_the_session_csrf_token_changes_nothing(app, world):
    did = world.dossier("submitted")
    client = client_for(app, "agent.occitanie")
    response = client.post(f"/ui/dossiers/{did}/actions/take_for_review", data={"csrf_token": "forged"})
    assert response.status_code == 303
    assert state_of(world.uow_factory, did) == "submitted"
    page = client.get(f"/ui/dossiers/{did}")
    assert "Le formulaire a expiré" in page.text


def test_an_officer_takes_a_dossier_for_review_from_its_page(app, world):
    did = world.dossier("submitted")
    client = client_for(app, "agent.occitanie")
    page = client.get(f"/ui/dossiers/{did}")
    assert "Prendre en instruction" in page.text
    response = client.post(f"/ui/dossiers/{did}/actions/take_for_review", data={"csrf_token": csrf_of(page.text)})
    assert response.headers["location"] == f"/ui/dossiers/{did}"
    assert state_of(world.uow_factory, did) == "eligibility_review"
    after = client.get(f"/ui/dossiers/{did}").text
    assert "Dossier pris en instruction" in after and "Déclarer éligible" in after


def test_another_regions_dossier_answers_404_to_pages_and_forms(app, world):
    did = world.dossier("submitted")
    client = client_for(app, "agent.nouvelle-aquitaine")
    assert client.get(f"/ui/dossiers/{did}").status_code == 404
    token = csrf_of(client.get("/ui/dossiers").text)
    assert client.post(f"/ui/dossiers/{did}/actions/take_for_review", data={"csrf_token": token}).status_code == 404
    assert state_of(world.uow_factory, did) == "submitted"
    assert "OCC-" not in client.get("/ui/dossiers?closed=1").text


def test_an_auditor_sees_no_write_button_and_its_posts_are_refused(app, world):
    did = world.dossier("eligibility_review")
    client = client_for(app, "audit.occitanie")
    page = client.get(f"/ui/dossiers/{did}")
    assert page.status_code == 200
    assert "Aucune action de votre rôle" in page.text
    assert "/actions/" not in page.text and "Accepter</button>" not in page.text
    response = client.post(f"/ui/dossiers/{did}/actions/request_documents",
                           data={"csrf_token": csrf_of(page.text), "kinds": ["kbis"]})
    assert response.status_code == 403
    assert "Un auditeur consulte" in response.text
    assert state_of(world.uow_factory, did) == "eligibility_review"


def test_a_refused_command_names_its_rule_and_changes_nothing(app, world):
    did = world.dossier("eligibility_review")
    client = client_for(app, "agent.occitanie")
    token = csrf_of(client.get(f"/ui/dossiers/{did}").text)
    refused = client.post(f"/ui/dossiers/{did}/actions/declare_eligible",
                          data={"csrf_token": token, "consultant": "Cabinet Midi Conseil", "days": "4", "day_rate": "1100"})
    assert state_of(world.uow_factory, did) == "eligibility_review"
    assert refused.status_code == 422  # the page again, not a redirect to the top of it
    alert = re.search(r'<p class="error" role="alert" id="action-error"[^>]*>(.*?)</p>', refused.text, re.S)
    said = text_of(alert.group(1))
    assert "règle « minimum de jours »" in said and "Rien n'a été modifié" in said
    assert "[day_minimum]" not in said  # plain French: the rule by its label, never its id
    # The message sits in the form that was sent, and the form keeps what was typed.
    form = refused.text[refused.text.index('actions/declare_eligible"'):]
    form = form[:form.index("</form>")]
    assert 'id="action-error"' in form
    assert 'value="Cabinet Midi Conseil"' in form and 'name="days" type="number"' in form and 'value="4"' in form
    assert 'value="1100"' in form


def test_a_form_sent_on_an_older_version_of_the_dossier_is_refused(app, world):
    did = world.dossier("submitted")
    client = client_for(app, "agent.occitanie")
    page = client.get(f"/ui/dossiers/{did}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    world.run(commands.take_for_review, "agent.occitanie", dossier_id=did)  # someone else, meanwhile
    refused = client.post(f"/ui/dossiers/{did}/actions/request_documents",
                          data={"csrf_token": csrf_of(page), "version": version, "kinds": ["rib"]})
    after = text_of(refused.text)
    assert refused.status_code == 422
    assert "modifié" in after and "Rien n'a été modifié" in after
    assert re.search(r'<input type="checkbox" name="kinds" value="rib" checked>', refused.text)  # kept
    with world.uow_factory() as uow:
        assert uow.session.scalar(select(m.DocumentRequest).where(m.DocumentRequest.dossier_id == did)) is None


def test_a_consultant_uploads_a_real_pdf_and_a_file_of_another_type_is_refused(app, world):
    did = world.dossier("diagnostic")
    client = client_for(app, "cabinet.midi")
    token = csrf_of(client.get(f"/ui/dossiers/{did}").text)
    refused = client.post(f"/ui/dossiers/{did}/documents", data={"csrf_token": token, "kind": "diagnostic_report"},
                          files={"file": ("rapport.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")})
    assert refused.status_code == 422  # the page again, the refusal beside the upload form
    alert = re.search(r'id="upload-error"[^>]*>([^<]*)<', refused.text)
    assert alert and "type de fichier non accepté (champ « fichier »)" in unescape(alert.group(1))
    pdf = small_pdf("Rapport de diagnostic")
    client.post(f"/ui/dossiers/{did}/documents", data={"csrf_token": token, "kind": "diagnostic_report"},
                files={"file": ("Rapport diagnostic.pdf", pdf, "application/octet-stream")})
    with world.uow_factory() as uow:
        docs = [(d.id, d.content_type, d.size, d.uploaded_by) for d in uow.session.scalars(
            select(m.Document).where(m.Document.dossier_id == did, m.Document.kind == "diagnostic_report"))]
    assert [d[1:] for d in docs] == [("application/pdf", len(pdf), "cabinet.midi")]
    page = client.get(f"/ui/dossiers/{did}").text
    assert "Pièce déposée : Rapport diagnostic.pdf" in page
    download = client.get(f"/ui/dossiers/{did}/documents/{docs[0][0]}/fichier")
    assert download.content == pdf and download.headers["content-type"] == "application/pdf"


def test_the_money_breakdown_shows_each_rule_that_cut_an_amount_and_why(app, world):
    did = world.dossier("approved")  # golden case 1: phase-2 day rate 1 300 € capped at 1 200 €
    page = text_of(client_for(app, "agent.occitanie").get(f"/ui/dossiers/{did}").text)
    assert "17 500,00 €" in page
    assert "plafond du taux journalier — phase 2, dépense éligible réduite de 2 000,00 €" in page
    assert "taux journalier 1 300,00 € plafonné à 1 200,00 € HT" in page  # French amounts, even in a reason
    assert "1300.00" not in page and "day_rate_cap" not in page


def test_the_claim_review_shows_invoices_eligible_against_claimed_and_the_cutoff_exclusion(app, world):
    did = world.dossier("approved")
    world.clock.set(world.clock.now().replace(year=2023, month=1, day=20))
    world.run(commands.claim_payment, "entreprise.garonne", dossier_id=did,
              phase=1, kind="final", invoices=[{"date": "2022-12-31", "days": 5, "day_rate": "1100.00"},
                                               {"date": "2023-01-02", "days": 1, "day_rate": "1100.00"}])
    with world.uow_factory() as uow:
        claim_id = uow.session.scalar(select(m.PaymentClaim.id).where(m.PaymentClaim.dossier_id == did))
    client = client_for(app, "finances.occitanie")
    queue = text_of(client.get("/ui/paiements").text)
    assert f"n°{claim_id}" in queue
    page = client.get(f"/ui/paiements/{claim_id}").text
    text = text_of(page)
    assert "Dépense présentée 6 600,00 €" in text and "Dépense éligible 5 500,00 € (5 jours)" in text
    assert "exclue : dépense postérieure à la date limite du 31/12/2022" in text
    assert "Payer la demande" in page
    pay = client.post(f"/ui/dossiers/{did}/actions/pay", data={"csrf_token": csrf_of(page), "claim_id": str(claim_id),
                                                             "back": "claim"})
    assert pay.headers["location"] == f"/ui/paiements/{claim_id}"
    after = text_of(client.get(f"/ui/paiements/{claim_id}").text)
    assert "Paiement émis" in after and "Montant versé : 5 500,00 €" in after and "payée" in after
    assert state_of(world.uow_factory, did) == "in_payment"


def test_an_advance_claim_shows_the_advance_cap(app, world):
    did = world.dossier("approved")
    world.run(commands.claim_payment, "entreprise.garonne", dossier_id=did,
              phase=2, kind="advance", amount="5000.00")
    with world.uow_factory() as uow:
        claim_id = uow.session.scalar(select(m.PaymentClaim.id).where(m.PaymentClaim.dossier_id == did))
    text = text_of(client_for(app, "agent.occitanie").get(f"/ui/paiements/{claim_id}").text)
    assert "Plafond des avances 8 400,00 € (70 % de l'aide votée)" in text
    assert "reste possible après cette demande : 3 400,00 €" in text


def test_the_work_queue_puts_the_soonest_deadline_first_and_counts_each_state(app, world):
    late = world.dossier("eligibility_review")
    world.run(commands.request_documents, "agent.occitanie", dossier_id=late, kinds=["rib"])
    world.clock.advance(days=10)
    soon = world.dossier("eligibility_review")
    world.run(commands.request_documents, "agent.occitanie", dossier_id=soon, kinds=["kbis"])
    voted = world.dossier("approved")
    page = client_for(app, "agent.occitanie").get("/ui/dossiers").text
    order = [int(x) for x in re.findall(r'<td><a href="/ui/dossiers/(\d+)">', page)]
    assert order.index(late) < order.index(soon) < order.index(voted)
    text = text_of(page)
    assert "instruction de recevabilité 2" in text and "voté / conventionné 1" in text
    assert "caducité si les pièces demandées ne sont pas remises" in text


def test_the_head_votes_a_session_in_bulk_one_result_per_dossier(app, world):
    first = world.dossier("ready_for_vote", session="CP-2022-07")
    second = world.dossier("ready_for_vote", session="CP-2022-07")
    client = client_for(app, "cheffe.occitanie")
    page = client.get("/ui/seances/CP-2022-07").text
    form = {"csrf_token": csrf_of(page),
            f"outcome_{first}": "approved", f"deliberation_{first}": "CP-2022-07-001",
            f"version_{first}": re.search(rf'name="version_{first}" value="(\d+)"', page).group(1),
            f"outcome_{second}": "approved", f"deliberation_{second}": "",
            f"version_{second}": re.search(rf'name="version_{second}" value="(\d+)"', page).group(1)}
    result = text_of(client.post("/ui/seances/CP-2022-07/votes", data=form).text)
    assert "1 enregistré, 1 refusé" in result
    assert "état « voté / conventionné », aide votée 17 500,00 €" in result
    assert "numéro de délibération est obligatoire" in result
    assert state_of(world.uow_factory, first) == "approved"
    assert state_of(world.uow_factory, second) == "ready_for_vote"


def test_only_the_head_records_votes(app, world):
    world.dossier("ready_for_vote", session="CP-2022-08")
    client = client_for(app, "agent.occitanie")
    page = client.get("/ui/seances/CP-2022-08").text
    assert "Enregistrer les votes" not in page
    assert client.post("/ui/seances/CP-2022-08/votes", data={"csrf_token": csrf_of(page)}).status_code == 403


def test_the_auditor_replays_a_dossier_at_a_past_instant_with_its_integrity(app, world):
    did = world.dossier("approved")
    with world.uow_factory() as uow:
        events = uow.session.scalars(select(m.Event).where(m.Event.dossier_id == did).order_by(m.Event.seq)).all()
        proposed_at = next(e.at for e in events if e.command == "propose_for_vote")
    client = client_for(app, "audit.occitanie")
    now = text_of(client.get(f"/ui/audit/dossiers/{did}").text)
    assert "Intégrité vérifiée" in now and "voté / conventionné" in now
    assert "L'état rejoué est identique à l'état enregistré" in now
    past = text_of(client.get(f"/ui/audit/dossiers/{did}", params={"at": proposed_at.isoformat()}).text)
    assert "État : proposé au vote" in past and "Recalcul conforme" in past
    bad = text_of(client.get(f"/ui/audit/dossiers/{did}", params={"at": "hier"}).text)
    assert "illisible (champ « date et heure »)" in bad
    assert client_for(app, "agent.occitanie").get(f"/ui/audit/dossiers/{did}").status_code == 403


def test_the_dashboard_counts_what_the_regions_publish_and_shows_the_published_figures(app, world):
    world.dossier("approved")
    world.dossier("action_plan")
    world.dossier("diagnostic")
    page = client_for(app, "agent.occitanie").get("/ui/tableau-de-bord").text
    text = text_of(page)
    assert "2 sites diagnostiqués" in text
    # One company (two sites diagnosed), whose plan the vote accepted; the card says the table's figure.
    assert "100 % des entreprises diagnostiquées avec un plan accepté" in text
    assert "1 dossier d'aide voté" in text and "17 500,00 € d'aide votée" in text
    assert page.count('role="img"') >= 6 and "<title id=" in page and "<desc id=" in page
    assert "1 171" in text and "1 903" in text and "684" in text and "70 %" in text


def test_the_state_chart_draws_and_lists_every_transition(app):
    from states.lifecycle import STATES, TRIGGERS
    from web.format import TRIGGER_LABELS

    page = client_for(app, "agent.occitanie").get("/ui/cycle-de-vie").text
    text = text_of(page)
    assert "<svg" in page and "Cycle de vie d'un dossier" in text
    for trigger in TRIGGERS:
        assert f'data-trigger="{trigger}"' in page and TRIGGER_LABELS[trigger] in text
    # People read the states and actions in French only: no code id on screen.
    shown = set(re.findall(r"[a-z]+(?:_[a-z]+)+", text))
    assert not shown & (set(STATES) | set(TRIGGERS)), shown & (set(STATES) | set(TRIGGERS))


def test_pages_carry_security_headers_and_no_inline_script(app):
    client = client_for(app, "agent.occitanie")
    response = client.get("/ui/dossiers")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text and "onclick" not in response.text
    assert client.get("/ui/static/htmx.min.js").status_code == 200


def test_the_workspace_is_mounted_on_the_api_application(uow_factory, clock, monkeypatch):
    api = pytest.importorskip("api.app")
    use_fast_passwords(monkeypatch)
    app = api.create_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET)
    if not any(getattr(r, "path", None) == "/ui" for r in app.routes):
        from web.app import mount_web
        mount_web(app, uow_factory=uow_factory, clock=clock)
    client = TestClient(app, follow_redirects=False)
    assert client.get("/").headers["location"] == "/ui/"
    assert client.get("/ui/login").status_code == 200
    assert "/ui" not in str(client.get("/openapi.json").json()["paths"])
