"""Anchors are written wherever events are written, without `usine serve` and its nightly flow:
at the end of `usine demo`, and by the API alone (periodically and at shutdown). A copy of the
anchors kept outside the database (`usine audit export-anchors`) is what vouches for them."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from api_support import SECRET, fast_passwords  # noqa: F401  (fixture)
from audit_scenarios import play
from fastapi.testclient import TestClient
from smtp_sink import free_port
from sqlalchemy import delete, func, select, text

from api.app import create_app
from db import models as m
from db.models_audit import AuditAnchor, AuditAnchorHead
from services.audit.anchors import anchor, export_journal
from services.audit.verify import verify_database
from services.clock import FrozenClock
from services.users import DEMO_PASSWORD, seed_demo_users

ROOT = Path(__file__).resolve().parents[1]


def anchors(uow_factory) -> list[AuditAnchor]:
    with uow_factory() as uow:
        rows = uow.session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq)).all()
        uow.session.expunge_all()
        return rows


def heads(uow_factory) -> dict[str, int]:
    with uow_factory() as uow:
        return {r[0]: r[1] for r in uow.session.execute(
            select(AuditAnchorHead.dossier_reference, func.max(AuditAnchorHead.seq))
            .group_by(AuditAnchorHead.dossier_reference))}


def last_seqs(uow_factory) -> dict[str, int]:
    with uow_factory() as uow:
        return {r[0]: r[1] for r in uow.session.execute(
            select(m.Event.dossier_reference, func.max(m.Event.seq)).group_by(m.Event.dossier_reference))}


def test_the_demo_ends_anchored_every_dossier_at_its_last_event(uow_factory, tmp_path):
    from services.demo import DEMO_NOW, load_demo

    journal = tmp_path / "ancres.jsonl"
    report = load_demo(uow_factory, dossiers=12, seed=3, journal=str(journal))
    (only,) = anchors(uow_factory)
    assert report["anchor"]["seq"] == 1 and report["anchor"]["hash"] == only.hash
    assert only.anchored_at == DEMO_NOW and only.dossiers == report["dossiers"]
    assert heads(uow_factory) == last_seqs(uow_factory)        # every head, up to the sweep's events
    assert json.loads(journal.read_text("utf-8"))["hash"] == only.hash
    assert verify_database(uow_factory.engine, journal=str(journal)).ok


@pytest.fixture
def api_app(uow_factory, fast_passwords):  # noqa: F811
    clock = FrozenClock(datetime(2021, 2, 1, 9, 0, tzinfo=timezone.utc))
    seed_demo_users(uow_factory, clock)

    def make(**kw):
        return create_app(uow_factory=uow_factory, clock=clock, secret_key=SECRET, **kw)
    return make


def _submit(client: TestClient) -> int:
    token = client.post("/auth/token", data={"username": "entreprise.garonne", "password": DEMO_PASSWORD}).json()
    company = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
               "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
               "activity": "industrial"}
    r = client.post("/dossiers", json={"programme": "occitanie-prif", "company": company},
                    headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 201, r.text
    return r.json()["dossier_id"]


def test_the_api_anchors_what_it_wrote_when_it_stops_and_nothing_when_nothing_moved(api_app, uow_factory):
    with TestClient(api_app(anchor_every=3600)) as client:
        _submit(client)
        assert anchors(uow_factory) == []
    (first,) = anchors(uow_factory)
    assert first.dossiers == 1 and heads(uow_factory) == last_seqs(uow_factory)
    with TestClient(api_app(anchor_every=3600)):
        pass
    assert len(anchors(uow_factory)) == 1                    # an idle API writes no anchor


def test_the_api_anchors_periodically_while_it_runs(api_app, uow_factory):
    with TestClient(api_app(anchor_every=0.05)) as client:
        _submit(client)
        deadline = time.monotonic() + 30
        while not anchors(uow_factory) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.dossiers for a in anchors(uow_factory)] == [1]
        _submit(client)
        while len(anchors(uow_factory)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [a.dossiers for a in anchors(uow_factory)] == [1, 2]


def test_an_api_given_its_database_by_a_test_does_not_anchor_unless_asked(api_app, uow_factory):
    with TestClient(api_app()) as client:
        _submit(client)
    assert anchors(uow_factory) == []


def test_usine_api_alone_anchors_at_shutdown(uow_factory, database_url, tmp_path):
    play(uow_factory, "golden-1-sme-full-life")
    assert anchors(uow_factory) == []
    port = free_port()
    env = {**os.environ, "USINE_DATABASE_URL": database_url, "USINE_STORAGE_DIR": str(tmp_path / "docs"),
           "USINE_VAR_DIR": str(tmp_path / "var"), "USINE_API_ANCHOR_SECONDS": "3600", "USINE_WEB": "0",
           "USINE_AUDIT_JOURNAL": str(tmp_path / "ancres.jsonl"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PYTHONPATH": str(ROOT)}
    env.pop("USINE_CLOCK_START", None)
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, out
    (only,) = anchors(uow_factory)
    assert only.dossiers == 1 and heads(uow_factory) == last_seqs(uow_factory)
    assert json.loads((tmp_path / "ancres.jsonl").read_text("utf-8"))["hash"] == only.hash


def test_the_exported_anchors_are_a_journal_that_names_a_dossier_erased_with_its_anchor_rows(uow_factory, tmp_path):
    full = play(uow_factory, "golden-1-sme-full-life")
    lapsed = play(uow_factory, "golden-9-document-chase-lapse")
    appended = tmp_path / "appended.jsonl"
    anchor(uow_factory, FrozenClock(datetime(2022, 1, 1, tzinfo=timezone.utc)), journal=appended)
    exported = tmp_path / "exported.jsonl"
    with uow_factory() as uow:
        written = export_journal(uow.session, exported)
        ref = uow.session.get(m.Dossier, lapsed).reference
    assert written["anchors"] == 1 and exported.read_text("utf-8") == appended.read_text("utf-8")
    assert verify_database(uow_factory.engine, journal=str(exported)).ok
    with uow_factory.engine.begin() as conn:
        for table in ("events", "notifications", "documents", "document_requests", "de_minimis_aids", "payments",
                      "recovery_orders", "payment_claims"):
            conn.execute(text(f"DELETE FROM {table} WHERE dossier_id = :d"), {"d": lapsed})
        conn.execute(text("DELETE FROM dossiers WHERE id = :d"), {"d": lapsed})
        conn.execute(delete(AuditAnchorHead.__table__).where(AuditAnchorHead.dossier_reference == ref))
    report = verify_database(uow_factory.engine, journal=str(exported))
    assert (ref, "dossier_removed") in {(p["dossier"], p["problem"]) for p in report.problems}
    assert full is not None


def test_usine_audit_export_anchors_writes_the_file_and_says_its_hash(uow_factory, database_url, tmp_path):
    play(uow_factory, "golden-1-sme-full-life")
    anchor(uow_factory, FrozenClock(datetime(2022, 1, 1, tzinfo=timezone.utc)))
    env = {**os.environ, "USINE_DATABASE_URL": database_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "PYTHONPATH": str(ROOT)}
    env.pop("USINE_CLOCK_START", None)
    out = tmp_path / "ancres.jsonl"
    done = subprocess.run([sys.executable, "-m", "cli.main", "audit", "export-anchors", "-o", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 ancre(s)" in done.stdout and "01/01/2022" in done.stdout
    assert json.loads(out.read_text("utf-8"))["heads"][0][1] == 15
