"""Exports for auditors — a dossier's history as JSON (versioned schema) and as a readable PDF,
a programme's dossiers as one archive — and the auditor's API routes."""
from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime, timezone

import jsonschema
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select, text

from db import models as m
from services import commands
from services.audit.anchors import anchor
from services.audit.export import export_dossier, export_hash, export_programme, schema
from services.audit.pdf import render_pdf
from services.clock import FrozenClock
from services.demo import load_demo
from services.scenario import DISPATCH, parse_instant
from services.users import create_user, known_regions
from tests.audit_scenarios import play, scenario

NOW = FrozenClock(datetime(2022, 6, 15, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def golden_1(uow_factory):
    dossier = play(uow_factory, "golden-1-sme-full-life")
    anchor(uow_factory, NOW)
    return dossier


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages).replace("\u00a0", " ")


def test_the_json_export_follows_its_published_schema_and_proves_itself(uow_factory, golden_1):
    with uow_factory() as uow:
        export = export_dossier(uow.session, golden_1, clock=NOW, exported_by="Contrôle régional")
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(export)
    assert export["schema_version"].startswith("1.")
    assert export["export_hash"] == export_hash(export)
    assert [e["seq"] for e in export["events"]] == list(range(1, 16))
    assert export["events"][0]["prev_hash"] == "0" * 64
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(export["events"], export["events"][1:]))
    assert export["verification"]["ok"] and export["verification"]["anchor"]["seq"] == 15
    assert export["replay"]["recomputation"]["ok"] and export["stored_state_differences"] == []
    assert export["replay"]["state"]["amounts"]["net_paid"] == "16300.00"
    with uow_factory() as uow:
        stored = {d.sha256 for d in uow.session.scalars(select(m.Document).where(m.Document.dossier_id == golden_1))}
        templates = {n.template_hash for n in uow.session.scalars(select(m.Notification))}
    assert {d["sha256"] for d in export["documents"]} == stored
    assert {n["template_hash"] for n in export["notifications"]} == templates
    assert {"candidacy_received", "payment_issued", "vote_result"} <= {n["kind"] for n in export["notifications"]}


def test_the_pdf_of_a_dossier_reads_as_its_certified_history(uow_factory, golden_1):
    with uow_factory() as uow:
        export = export_dossier(uow.session, golden_1, clock=NOW, exported_by="Contrôle régional")
    data = render_pdf(export)
    assert data.startswith(b"%PDF")
    content = pdf_text(data)
    flat = re.sub(r"\s+", "", content)
    reference = export["dossier"]["reference"]
    assert f"Dossier {reference} — historique certifié" in content
    assert "Atelier Garonne SAS" in content and "732829320" in content
    assert "Chaîne d'empreintes SHA-256 intacte : 15 événement(s)" in content
    assert "identique à l'état enregistré" in content
    for amount in ("5 500,00 €", "12 000,00 €", "17 500,00 €", "16 300,00 €", "1 200,00 €", "8 400,00 €"):
        assert amount in content, amount
    assert "CP/2021-04/17" in content and "aucun écart" in content
    # Timeline: who, when, what.
    assert "officer (scénario)" in content and "25/03/2021" in content and "Prise en instruction" in content
    # Documents with their hashes, messages with their template hashes, every event's hash.
    assert all(d["sha256"] in flat for d in export["documents"])
    assert all(n["template_hash"] in flat for n in export["notifications"])
    assert all(e["hash"] in flat for e in export["events"])
    assert export["export_hash"] in flat


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_TIME = re.compile(r"T\d{2}:\d{2}")


def play_until(uow_factory, name: str, stop: str) -> int:
    """Play a golden scenario's steps up to (not including) the first step doing `stop`."""
    doc = scenario(name)
    clock = FrozenClock(parse_instant(doc["steps"][0]["at"], "at"))
    dossier_id = None
    for step in doc["steps"]:
        if step["do"] == stop:
            break
        clock.set(parse_instant(step["at"], "at"))
        actor = commands.Actor(name=f"{step['as']} (scénario)", role=step["as"])
        with uow_factory() as uow:
            out = DISPATCH[step["do"]][1](step, uow, clock, actor, dossier_id, doc["programme"])
        if step["do"] == "submit_candidacy":
            dossier_id = out.dossier_id
    return dossier_id


def amounts_section(content: str) -> str:
    return content[content.index("Montants"):content.index("Recalcul des règles")]


def test_the_pdf_of_a_dossier_proposed_for_vote_shows_the_proposed_aid_not_a_voted_one(uow_factory):
    dossier = play_until(uow_factory, "golden-1-sme-full-life", "record_vote")
    with uow_factory() as uow:
        export = export_dossier(uow.session, dossier, clock=NOW)
    assert export["dossier"]["state"] == "ready_for_vote"
    amounts = amounts_section(pdf_text(render_pdf(export)))
    assert "Aide votée" not in amounts and "Délibération" not in amounts
    assert "Aide proposée — phase 1\n5 500,00 €" in amounts
    assert "Aide proposée — phase 2\n12 000,00 €" in amounts
    assert "Aide proposée — total\n17 500,00 €" in amounts
    assert "CP-2021-04 (pas encore votée)" in amounts


def test_the_pdf_of_a_voted_dossier_shows_the_voted_aid_and_french_dates(uow_factory, golden_1):
    with uow_factory() as uow:
        export = export_dossier(uow.session, golden_1, clock=NOW)
    content = pdf_text(render_pdf(export))
    amounts = amounts_section(content)
    assert "Aide proposée" not in amounts
    assert "Aide votée — total\n17 500,00 €" in amounts and "Aide votée — phase 2\n12 000,00 €" in amounts
    assert "CP/2021-04/17 du 09/04/2021" in amounts
    assert "Date limite de demande de solde\n30/06/2023" in amounts
    assert "Export du 15/06/2022 11:00 (heure de Paris)" in content
    assert "du 15/06/2022 11:00 (empreinte d'ancre" in content
    assert not ISO_DATE.search(content), ISO_DATE.findall(content)
    assert not ISO_TIME.search(content)


def test_the_pdf_names_reviews_and_message_statuses_in_french(uow_factory, golden_1):
    with uow_factory() as uow:
        export = export_dossier(uow.session, golden_1, clock=NOW)
    content = re.sub(r"\s+", " ", pdf_text(render_pdf(export)))  # table cells wrap
    documents = content[content.index("Pièces et empreintes"):content.index("Messages envoyés")]
    messages = content[content.index("Messages envoyés"):]
    assert "en attente d'examen" in documents and "pending" not in documents
    assert "en file d'envoi" in messages and "queued" not in messages
    assert "accusé de réception" in messages and "candidacy_received" not in messages


def test_the_pdf_prints_the_dates_of_document_requests_and_rule_checks_in_french(uow_factory):
    dossier = play(uow_factory, "golden-9-document-chase-lapse")
    with uow_factory.engine.begin() as conn:  # a lapse date the rules do not give: a discrepancy with dates
        row = conn.execute(select(m.Event.__table__).where(m.Event.dossier_id == dossier,
                                                           m.Event.command == "request_documents")).first()
        conn.execute(m.Event.__table__.update().where(m.Event.__table__.c.id == row.id)
                     .values(data={**row.data, "lapse_on": "2021-04-01"}))
    with uow_factory() as uow:
        export = export_dossier(uow.session, dossier, clock=NOW)
    content = pdf_text(render_pdf(export))
    flat = " ".join(content.split())
    assert "caducité le 01/04/2021" in flat  # the timeline reads the (tampered) request
    assert "01/04/2021 31/03/2021" in flat  # lapse_on: recorded, recomputed
    assert not ISO_DATE.search(content), ISO_DATE.findall(content)
    assert not ISO_TIME.search(content)


def test_the_pdf_of_a_tampered_dossier_says_so(uow_factory, golden_1):
    with uow_factory.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE dossier_id = :d AND seq = 4").bindparams(d=golden_1))
    with uow_factory() as uow:
        export = export_dossier(uow.session, golden_1, clock=NOW)
    content = pdf_text(render_pdf(export))
    assert "ANOMALIES" in content and "removed" in content and "n°4" in content


def test_a_programme_is_exported_as_one_archive_with_a_manifest_of_hashes(uow_factory, tmp_path):
    load_demo(uow_factory, dossiers=14, seed=3)
    target = tmp_path / "occitanie.zip"
    report = export_programme(uow_factory, "occitanie-prif", target, clock=NOW, with_pdf=True)
    with uow_factory() as uow:
        refs = set(uow.session.scalars(select(m.Dossier.reference).where(m.Dossier.programme_id == "occitanie-prif")))
    assert report["dossiers"] == len(refs) == report["verified"]
    with zipfile.ZipFile(target) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        assert {f"dossiers/{r}.json" for r in refs} | {f"dossiers/{r}.pdf" for r in refs} <= names
        assert {"schema/dossier-history.v1.schema.json", "programmes/occitanie-prif.v1.json", "anchors.json"} <= names
        import hashlib
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(z.read(name)).hexdigest() == digest
        assert all(d["verified"] and d["identical_to_stored"] and d["recomputation_ok"] for d in manifest["dossiers"])
        one = json.loads(z.read(f"dossiers/{sorted(refs)[0]}.json"))
        assert one["export_hash"] == export_hash(one)


# -- the API -----------------------------------------------------------------------------------

@pytest.fixture
def api(uow_factory, golden_1):
    from api.app import create_app

    regions = known_regions_of(uow_factory)
    for username, role, scope in (("controle", "auditor", ["Occitanie"]),
                                  ("controle-naq", "auditor", [r for r in regions if r != "Occitanie"][:1]),
                                  ("instructeur", "officer", ["Occitanie"])):
        with uow_factory() as uow:
            create_user(uow=uow, clock=NOW, username=username, password="correct horse battery", role=role,
                        regions=scope)
    client = TestClient(create_app(uow_factory=uow_factory, clock=NOW, secret_key="test-secret-" + "x" * 32))

    def login(username: str) -> dict:
        r = client.post("/auth/token", data={"username": username, "password": "correct horse battery"})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return client, login, golden_1


def known_regions_of(uow_factory) -> list[str]:
    with uow_factory() as uow:
        return known_regions(uow)


def test_an_auditor_replays_verifies_and_exports_through_the_api(api):
    client, login, dossier = api
    h = login("controle")
    r = client.get(f"/audit/dossiers/{dossier}/replay", params={"at": "2021-05-06T12:00:00+02:00"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["state"]["status"] == "in_payment" and r.json()["state"]["amounts"]["net_paid"] == "13900.00"
    r = client.get(f"/audit/dossiers/{dossier}/replay", params={"diff": "true"}, headers=h)
    assert r.json()["diff"]["identical"] is True and r.json()["recomputation"]["ok"] is True
    r = client.get("/audit/verify", headers=h)
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["anchors"]["anchors"] == 1
    r = client.get(f"/audit/dossiers/{dossier}/export.json", headers=h)
    assert r.status_code == 200 and r.json()["export_hash"] == export_hash(r.json())
    r = client.get(f"/audit/dossiers/{dossier}/export.pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert "historique certifié" in pdf_text(r.content)
    r = client.get("/audit/programmes/occitanie-prif/export.zip", params={"pdf": "false"}, headers=h)
    assert r.status_code == 200
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert client.get("/audit/anchors", headers=h).json()[0]["seq"] == 1


def test_the_api_names_a_bad_instant_and_tampering(api, uow_factory):
    client, login, dossier = api
    h = login("controle")
    r = client.get(f"/audit/dossiers/{dossier}/replay", params={"at": "hier"}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "at"
    with uow_factory.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE dossier_id = :d AND seq = 7").bindparams(d=dossier))
    r = client.get("/audit/verify", headers=h)
    assert r.json()["ok"] is False
    assert {(p["problem"], p["seq"]) for p in r.json()["problems"]} >= {("removed", 7)}


def test_only_auditors_use_the_audit_routes_and_they_change_nothing(api):
    client, login, dossier = api
    officer = login("instructeur")
    assert client.get(f"/audit/dossiers/{dossier}/replay", headers=officer).status_code == 403
    assert client.get("/audit/verify", headers=officer).status_code == 403
    assert client.get("/audit/verify").status_code == 401
    auditor = login("controle")
    assert client.post("/audit/verify", headers=auditor).status_code in (403, 405)
    assert client.post(f"/dossiers/{dossier}/commands/take_for_review", headers=auditor, json={}).status_code == 403


def test_an_auditor_of_another_region_does_not_see_the_dossier(api):
    client, login, dossier = api
    other = login("controle-naq")
    assert client.get(f"/audit/dossiers/{dossier}/replay", headers=other).status_code == 404
    assert client.get(f"/audit/dossiers/{dossier}/export.pdf", headers=other).status_code == 404
    assert client.get("/audit/programmes/occitanie-prif/export.zip", headers=other).status_code == 404


def test_the_api_refuses_a_diff_with_a_past_instant_and_compares_at_the_last_event(api):
    client, login, dossier = api
    h = login("controle")
    url = f"/audit/dossiers/{dossier}/replay"
    r = client.get(url, params={"at": "2021-05-06T12:00:00+02:00", "diff": "true"}, headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert (body["rule"], body["field"]) == ("invalid_input", "diff")
    assert "état enregistré actuel" in body["detail"] and "06/05/2021 12:00" in body["detail"]
    assert "19/11/2021 10:00" in body["detail"]  # the last event, n°15
    # At the last event (or after it) the replay is the present: the comparison holds.
    for instant in ("2021-11-19T10:00:00+01:00", "2022-01-01T00:00:00+01:00"):
        r = client.get(url, params={"at": instant, "diff": "true"}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["diff"]["identical"] is True and r.json()["events_applied"] == 15
    # Without diff, a past instant is an ordinary replay.
    assert client.get(url, params={"at": "2021-05-06T12:00:00+02:00"}, headers=h).status_code == 200


def test_the_api_says_the_dossier_did_not_exist_yet_before_its_first_event(api):
    client, login, dossier = api
    h = login("controle")
    for params in ({"at": "2021-01-15T12:00:00+01:00"}, {"at": "2021-01-15T12:00:00+01:00", "diff": "true"}):
        r = client.get(f"/audit/dossiers/{dossier}/replay", params=params, headers=h)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert (body["rule"], body["field"]) == ("before_first_event", "at")
        assert "n'existait pas encore le 15/01/2021 12:00" in body["detail"]
        assert "01/02/2021 10:00" in body["detail"]
        assert body["first_event_at"] == "2021-02-01T09:00:00+00:00" and body["first_event_seq"] == 1
    # The first event's own instant is when it began to exist.
    r = client.get(f"/audit/dossiers/{dossier}/replay", params={"at": "2021-02-01T10:00:00+01:00"}, headers=h)
    assert r.status_code == 200 and r.json()["state"]["status"] == "submitted"
