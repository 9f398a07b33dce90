"""What the walkthrough saw, fixed: people by their names, no internal ids, French amounts and
agreement, a refused form where the eye is, a review that says what it decided, a second upload
of the same file flagged, eligibility only once the pieces are reviewed (where the programme
says so), letters dated and addressed as people read them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from test_web_pages import app, client_for, csrf_of, text_of, world  # noqa: F401 (fixtures)

from db import models as m
from programmes import FILES, Catalogue
from rules.errors import RuleViolation
from services import commands
from services.digest import queue_daily_digests
from services.uow import unit_of_work_factory
from tests.helpers import Life, row_counts
from web.format import count

OFFICER_NAME = "Claire Martin, chargée de mission (Occitanie)"


def test_pages_name_people_by_their_display_name_never_by_their_account(app, world):
    did = world.dossier("diagnostic")
    client = client_for(app, "agent.occitanie")
    page = text_of(client.get(f"/ui/dossiers/{did}").text)
    assert f"Chargé(e) de mission {OFFICER_NAME}" in page
    assert f"Prise en instruction par {OFFICER_NAME}." in page
    assert "agent.occitanie" not in page and "entreprise.garonne" not in page and "cabinet.midi" not in page
    queue = text_of(client.get("/ui/dossiers").text)
    assert OFFICER_NAME in queue and "agent.occitanie" not in queue.replace("Claire Martin", "")


def test_the_dossier_page_shows_no_internal_id_of_programme_state_or_rule(app, world):
    did = world.dossier("approved")
    page = text_of(client_for(app, "agent.occitanie").get(f"/ui/dossiers/{did}").text)
    assert "occitanie-prif" not in page
    assert "Candidature déposée au programme « Parcours régional Industrie du Futur » (version 1), avec 7 pièces." in page
    from states.lifecycle import STATES, TRIGGERS
    from web.format import RULE_LABELS

    codes = set(re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", page))
    assert not codes & (set(STATES) | set(TRIGGERS) | set(RULE_LABELS)), codes
    assert "financial_statement" not in page and "liasse-fiscale.txt" in page  # the pieces' French names


def test_counts_take_the_french_singular_for_zero_and_one():
    assert [count(n, "dossier") for n in (0, 1, 4)] == ["0 dossier", "1 dossier", "4 dossiers"]


def test_the_work_queue_says_1_dossier_and_0_dossier(app, world):
    client = client_for(app, "agent.occitanie")
    assert "0 dossier — échéances" in text_of(client.get("/ui/dossiers").text)
    world.dossier("submitted")
    assert "1 dossier — échéances" in text_of(client.get("/ui/dossiers").text)


def test_a_review_confirmation_says_what_was_decided(app, world):
    did = world.dossier("eligibility_review")
    client = client_for(app, "agent.occitanie")
    page = client.get(f"/ui/dossiers/{did}").text
    with world.uow_factory() as uow:
        rib = uow.session.execute(select(m.Document.id, m.Document.filename)
                                  .where(m.Document.dossier_id == did, m.Document.kind == "rib")).one()
        kbis = uow.session.execute(select(m.Document.id, m.Document.filename)
                                   .where(m.Document.dossier_id == did, m.Document.kind == "kbis")).one()
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    done = client.post(f"/ui/dossiers/{did}/documents/{rib.id}/review",
                       data={"csrf_token": csrf_of(page), "version": version, "decision": "accepted"})
    assert done.status_code == 303
    shown = text_of(client.get(f"/ui/dossiers/{did}").text)
    assert f"Pièce « RIB » (v1, {rib.filename}) acceptée." in shown
    page = client.get(f"/ui/dossiers/{did}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    client.post(f"/ui/dossiers/{did}/documents/{kbis.id}/review",
                data={"csrf_token": csrf_of(page), "version": version, "decision": "refused", "reason": "Kbis de 2019"})
    shown = text_of(client.get(f"/ui/dossiers/{did}").text)
    assert "refusée — motif : Kbis de 2019." in shown


def test_a_second_upload_of_the_same_file_is_flagged_to_the_uploader(app, world):
    from web_support import small_pdf

    did = world.dossier("diagnostic")
    client = client_for(app, "cabinet.midi")
    pdf = small_pdf("Rapport de diagnostic")
    for name in ("rapport.pdf", "rapport-bis.pdf"):
        token = csrf_of(client.get(f"/ui/dossiers/{did}").text)
        client.post(f"/ui/dossiers/{did}/documents", data={"csrf_token": token, "kind": "diagnostic_report"},
                    files={"file": (name, pdf, "application/pdf")})
        shown = text_of(client.get(f"/ui/dossiers/{did}").text)
        flagged = ("ce fichier est identique (même empreinte SHA-256) à la pièce « rapport de diagnostic » v1 "
                   "(rapport.pdf)") in shown
        assert flagged == (name == "rapport-bis.pdf"), shown
    with world.uow_factory() as uow:  # kept all the same: a version is never refused for that
        assert len(uow.session.scalars(select(m.Document).where(m.Document.dossier_id == did,
                                                                m.Document.kind == "diagnostic_report")).all()) == 2


def test_the_daily_digest_greets_the_officer_by_name(world):
    did = world.dossier("eligibility_review")
    world.run(commands.request_documents, "agent.occitanie", dossier_id=did, kinds=["rib"])
    report = queue_daily_digests(uow_factory=world.uow_factory, clock=world.clock, include_empty=True)
    assert report.queued == 1
    with world.uow_factory() as uow:
        body, to = uow.session.execute(select(m.Notification.body_text, m.Notification.recipient_name)
                                       .where(m.Notification.kind == "daily_digest")).one()
    assert f"Bonjour {OFFICER_NAME}," in body and to == OFFICER_NAME


# -- eligibility once the candidacy pieces are reviewed (a programme-file flag) --------------------

@pytest.fixture
def reviewing(tmp_path, database_url, clock, actors):
    """A catalogue whose Occitanie programme asks for reviewed pieces before eligibility."""
    folder = tmp_path / "programmes"
    folder.mkdir()
    for path in Path(FILES).glob("*.toml"):
        text = path.read_text("utf-8")
        if path.name == "occitanie-prif.v1.toml":
            text = re.sub(r"(\[documents\]\n)", r"\1reviewed_before_eligibility = true\n", text, count=1)
        (folder / path.name).write_text(text, "utf-8")
    factory = unit_of_work_factory(database_url, catalogue=Catalogue(folder))
    yield Life(factory, clock, actors)
    factory.engine.dispose()


def _pieces(life) -> dict[str, int]:
    with life.uow_factory() as uow:
        return {d.kind: d.id for d in uow.session.scalars(select(m.Document).where(m.Document.dossier_id == life.dossier_id))}


def test_a_dossier_is_not_declared_eligible_while_candidacy_pieces_are_unreviewed_or_refused(reviewing):
    life = reviewing
    life.at("2021-02-01T10:00:00+01:00").submit()
    life.do("take_for_review", "officer")
    pieces = _pieces(life)
    for kind, piece in pieces.items():
        if kind not in ("rib", "kbis"):
            life.do("review_document", "officer", document_id=piece, decision="accepted")
    before = row_counts(life.uow_factory)
    with pytest.raises(RuleViolation) as refused:
        life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    assert (refused.value.rule, refused.value.field) == ("pieces_unreviewed", "documents")
    assert "à examiner : extrait Kbis de moins de 3 mois, RIB" in refused.value.message
    assert row_counts(life.uow_factory) == before  # nothing written
    life.do("review_document", "officer", document_id=pieces["rib"], decision="accepted")
    life.do("review_document", "officer", document_id=pieces["kbis"], decision="refused", reason="périmé")
    with pytest.raises(RuleViolation) as refused_piece:  # a refused piece counts as missing (as before)
        life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    assert refused_piece.value.rule == "documents_missing"
    assert "extrait Kbis de moins de 3 mois" in refused_piece.value.message and "kbis" not in refused_piece.value.message
    life.do("provide_documents", "applicant", kinds=["kbis"])
    with pytest.raises(RuleViolation) as still:
        life.do("declare_eligible", "officer", consultant="C", phase1={"days": 5, "day_rate": "1000.00"})
    assert "à examiner : extrait Kbis de moins de 3 mois" in still.value.message  # the new version waits
    with life.uow_factory() as uow:
        kbis2 = uow.session.scalars(select(m.Document.id).where(m.Document.dossier_id == life.dossier_id,
                                                                 m.Document.kind == "kbis")
                                    .order_by(m.Document.version.desc())).first()
    life.do("review_document", "officer", document_id=kbis2, decision="accepted")
    assert life.do("declare_eligible", "officer", consultant="C",
                   phase1={"days": 5, "day_rate": "1000.00"}).state == "diagnostic"


def test_programmes_without_the_flag_keep_declaring_eligible_as_the_golden_scenarios_do(uow_factory, clock, actors):
    life = Life(uow_factory, clock, actors)
    life.at("2021-02-01T10:00:00+01:00").submit()
    life.do("take_for_review", "officer")
    assert life.do("declare_eligible", "officer", consultant="C",
                   phase1={"days": 5, "day_rate": "1000.00"}).state == "diagnostic"
