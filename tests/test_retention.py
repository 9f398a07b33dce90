"""RGPD (docs/data-protection.md): a closed dossier keeps its personal data for its programme's
retention after its closure, then is anonymised in one unit of work and its pieces' files are
deleted — its history still verifies and still replays; a person can have everything held about
them exported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from db import models as m
from db import models_auth as ma
from programmes import FILES, ProgrammeFileError, load_programme_file
from services import retention
from services.audit.anchors import anchor
from services.audit.replay import diff, replay_dossier, stored_state
from services.audit.verify import verify_database
from services.clock import FrozenClock
from services.retention import ANONYMISED, export_person, person_export_lines, run_retention
from services.uow import unit_of_work_factory
from services.users import create_user
from tests.audit_scenarios import play, play_document, scenario

ROOT = Path(__file__).resolve().parents[1]
EVENTS = m.Event.__table__
pytest_plugins = ["tests.conftest_prefect"]
CONTACT = "c.durand@atelier-garonne.fr"
# Golden case 1 closes on 19 November 2021, golden case 9 lapses on 31 March 2021 (Occitanie:
# 10 years); golden case 6 closes on 12 January 2023; golden case 2 stays approved (open).
AFTER_RETENTION = "2032-01-05T03:30:00+01:00"


def clock_at(iso: str) -> FrozenClock:
    return FrozenClock(datetime.fromisoformat(iso))


@pytest.fixture
def factory(database_url, tmp_path):
    """Pieces in real files, as in production."""
    f = unit_of_work_factory(database_url, storage_dir=str(tmp_path / "pieces"))
    yield f
    f.engine.dispose()


@pytest.fixture
def dossiers(factory):
    doc = scenario("golden-1-sme-full-life")
    doc["steps"][0]["with"]["company"]["email"] = CONTACT
    ids = {"closed": play_document(factory, doc),
           "lapsed": play(factory, "golden-9-document-chase-lapse"),
           "closed_recently": play(factory, "golden-6-expense-cutoff"),
           "open": play(factory, "golden-2-pathway-cap")}
    return ids


def files_of(factory, dossier_id: int) -> list[Path]:
    with factory() as uow:
        keys = list(uow.session.scalars(select(m.Document.storage_key).where(m.Document.dossier_id == dossier_id)))
        root = uow.storage.root
    return [root / k for k in keys]


def snapshot(factory, dossier_id: int) -> dict:
    """What a dossier holds: its row, events, pieces and letters, as plain values."""
    with factory() as uow:
        s = uow.session
        d = s.get(m.Dossier, dossier_id)
        return {
            "dossier": (d.status, d.version, d.company_facts, d.anonymised_at, d.updated_at),
            "events": [(e.seq, e.actor, e.data, e.hash) for e in
                       s.scalars(select(m.Event).where(m.Event.dossier_id == dossier_id).order_by(m.Event.seq))],
            "pieces": [(x.filename, x.uploaded_by, x.sha256, x.size, x.content_deleted_at) for x in
                       s.scalars(select(m.Document).where(m.Document.dossier_id == dossier_id).order_by(m.Document.id))],
            "letters": [(n.recipient_address, n.body_text) for n in
                        s.scalars(select(m.Notification).where(m.Notification.dossier_id == dossier_id)
                                  .order_by(m.Notification.id))],
        }


def test_a_closed_dossier_past_its_retention_is_anonymised_and_its_pieces_deleted(factory, dossiers):
    files = files_of(factory, dossiers["closed"])
    assert files and all(p.exists() for p in files)
    report = run_retention(factory, clock_at(AFTER_RETENTION))
    assert sorted(d["reference"] for d in report.anonymised) == ["OCC-2021-000001", "OCC-2021-000002"]
    assert report.by_programme() == {"Parcours régional Industrie du Futur": 2}
    assert not any(p.exists() for p in files)
    after = snapshot(factory, dossiers["closed"])
    status, _, facts, anonymised_at, _ = after["dossier"]
    assert status == "closed" and anonymised_at == datetime.fromisoformat(AFTER_RETENTION)
    assert facts["email"] is None and facts["name"] == "Atelier Garonne SAS" and facts["siren"] == "732829320"
    # The company side's people are gone from the history; the Region's agents stay named.
    actors = {e[1] for e in after["events"]}
    assert "applicant (scénario)" not in actors and "consultant (scénario)" not in actors
    assert {"officer (scénario)", "head (scénario)", "finance (scénario)", ANONYMISED} <= actors
    assert CONTACT not in json.dumps([e[2] for e in after["events"]])
    # The pieces keep their hash and size; their files are deleted; no name is left in their file name.
    assert all(p[1] in (ANONYMISED, "officer (scénario)") and p[4] is not None for p in after["pieces"])
    assert all(len(p[2]) == 64 and p[3] > 0 for p in after["pieces"])
    assert all(address == ANONYMISED and CONTACT not in body for address, body in after["letters"])
    with factory() as uow:
        last = uow.session.scalars(select(m.Event).where(m.Event.dossier_id == dossiers["closed"])
                                   .order_by(m.Event.seq.desc())).first()
        company = uow.session.scalar(select(m.Company))
        uow.session.expunge_all()
    assert last.command == "anonymise" and last.role == "system" and last.state_before == last.state_after == "closed"
    assert last.data["rule"] == "rgpd_retention" and last.data["years_after_closure"] == 10
    assert last.data["closed_at"].startswith("2021-11-19") and last.data["due_on"] == "2031-11-19"
    assert last.data["counts"]["documents"] == len(files) and last.data["counts"]["letters"] == len(after["letters"])
    # The company still has an open dossier: its contact address is still needed.
    assert company.email == CONTACT


def test_a_dossier_still_open_or_closed_too_recently_is_untouched(factory, dossiers):
    before = {k: snapshot(factory, dossiers[k]) for k in ("open", "closed_recently")}
    run_retention(factory, clock_at(AFTER_RETENTION))
    assert {k: snapshot(factory, dossiers[k]) for k in ("open", "closed_recently")} == before
    assert all(p.exists() for k in ("open", "closed_recently") for p in files_of(factory, dossiers[k]))


def test_retention_ends_on_the_anniversary_of_the_closure_day_in_paris(factory, dossiers):
    eve = run_retention(factory, clock_at("2031-11-18T23:59:00+01:00"))
    assert [d["reference"] for d in eve.anonymised] == ["OCC-2021-000002"]  # the lapsed one, due in March
    day = run_retention(factory, clock_at("2031-11-19T00:00:00+01:00"))
    assert [d["reference"] for d in day.anonymised] == ["OCC-2021-000001"]


def test_a_second_run_changes_nothing(factory, dossiers):
    run_retention(factory, clock_at(AFTER_RETENTION))
    before = {k: snapshot(factory, v) for k, v in dossiers.items()}
    again = run_retention(factory, clock_at("2032-01-12T03:30:00+01:00"))
    assert again.anonymised == [] and again.pieces == 0 and again.refused == []
    assert {k: snapshot(factory, v) for k, v in dossiers.items()} == before


def test_the_dry_run_says_what_would_be_done_and_writes_nothing(factory, dossiers):
    before = {k: snapshot(factory, v) for k, v in dossiers.items()}
    report = run_retention(factory, clock_at(AFTER_RETENTION), dry_run=True)
    assert [d["reference"] for d in report.anonymised] == ["OCC-2021-000001", "OCC-2021-000002"]
    pieces = len(files_of(factory, dossiers["closed"])) + len(files_of(factory, dossiers["lapsed"]))
    assert report.pieces == pieces
    text = "\n".join(report.lines())
    assert text.startswith("Simulation — rien n'a été écrit. Durée de conservation au 05/01/2032")
    assert "Parcours régional Industrie du Futur : 2 dossier(s) seraient anonymisés" in text
    assert "OCC-2021-000001 — clos le 19/11/2021, conservation 10 ans, échue le 19/11/2031" in text
    assert f"{pieces} pièce(s) dont le fichier serait supprimé" in text
    assert {k: snapshot(factory, v) for k, v in dossiers.items()} == before
    assert all(p.exists() for p in files_of(factory, dossiers["closed"]))


def test_an_anonymised_history_still_verifies_against_its_chain_and_its_anchors(factory, dossiers):
    anchor(factory, FrozenClock(datetime(2022, 1, 1, 0, 15, tzinfo=timezone.utc)))
    run_retention(factory, clock_at(AFTER_RETENTION))
    anchor(factory, clock_at("2032-01-06T00:15:00+01:00"))
    report = verify_database(factory.engine)
    assert report.ok, report.problems
    assert report.anchors["checked"] is not False


def test_a_tampered_anonymised_event_is_still_detected(factory, dossiers):
    run_retention(factory, clock_at(AFTER_RETENTION))
    did = dossiers["closed"]
    with factory.engine.begin() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.dossier_id == did, EVENTS.c.seq == 1)
                     .values(actor="Quelqu'un d'autre"))
    problems = verify_database(factory.engine, anchors=False).problems
    assert [(p["dossier"], p["problem"], p["seq"]) for p in problems] == [("OCC-2021-000001", "edited", 1)]


def test_a_forged_redaction_manifest_is_detected(factory, dossiers):
    """Editing an event and writing its new hash into the `anonymise` event's manifest breaks
    the `anonymise` event's own hash: both are named."""
    from services.events import hash_of

    run_retention(factory, clock_at(AFTER_RETENTION))
    did = dossiers["closed"]
    with factory() as uow:
        events = list(uow.session.scalars(select(m.Event).where(m.Event.dossier_id == did).order_by(m.Event.seq)))
        pay = next(e for e in events if e.command == "pay")
        pay.data = {**pay.data, "amount": "9999.00"}
        forged = hash_of(pay)
        last = events[-1]
        last.data = {**last.data, "redacted": {**last.data["redacted"], str(pay.seq): forged}}
        uow.commit()
        seq, last_seq = pay.seq, last.seq
    found = {(p["problem"], p["seq"]) for p in verify_database(factory.engine, anchors=False).problems}
    assert ("edited", seq) in found and ("edited", last_seq) in found


def test_an_anonymise_event_forged_before_the_retention_is_over_launders_nothing(factory, dossiers):
    """A forger who edits an event and appends a well-chained `anonymise` event whose manifest
    covers the edit, on a dossier whose retention is not over, is still named."""
    from services.events import append_event, hash_of

    did = dossiers["closed_recently"]
    at = datetime.fromisoformat("2025-06-01T10:00:00+02:00")
    with factory() as uow:
        dossier = uow.session.get(m.Dossier, did)
        first = uow.session.scalars(select(m.Event).where(m.Event.dossier_id == did).order_by(m.Event.seq)).first()
        first.actor = ANONYMISED
        forged = hash_of(first)
        dossier.updated_at = at
        uow.session.flush()
        append_event(uow.session, dossier=dossier, at=at, actor="Usine (durée de conservation)", role="system",
                     command="anonymise", state_before=dossier.status,
                     data={"rule": "rgpd_retention", "redacted": {"1": forged}})
        uow.commit()
    problems = verify_database(factory.engine, anchors=False).problems
    assert ("edited", 1) in {(p["problem"], p["seq"]) for p in problems if p["dossier_id"] == did}


def test_an_anonymised_dossier_replays_to_the_same_state_and_amounts(factory, dossiers):
    did = dossiers["closed"]
    with factory() as uow:
        before = replay_dossier(uow.session, did)
    run_retention(factory, clock_at(AFTER_RETENTION))
    with factory() as uow:
        after = replay_dossier(uow.session, did)
        differences = diff(after, stored_state(uow.session, did))
    assert after.discrepancies == [] and differences == []
    assert after.state["status"] == before.state["status"] == "closed"
    assert after.state["amounts"] == before.state["amounts"]
    assert after.state["amounts"]["net_paid"] == "16300.00"
    assert after.state["vote"] == before.state["vote"] and after.state["payments"] == before.state["payments"]
    assert [(d["kind"], d["sha256"], d["size"]) for d in after.state["documents"]] == \
        [(d["kind"], d["sha256"], d["size"]) for d in before.state["documents"]]


def test_a_dossier_whose_history_was_tampered_with_is_refused_not_laundered(factory, dossiers):
    with factory.engine.begin() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.dossier_id == dossiers["lapsed"], EVENTS.c.seq == 2)
                     .values(reason="réécrit"))
    before = snapshot(factory, dossiers["lapsed"])
    report = run_retention(factory, clock_at(AFTER_RETENTION))
    assert [d["reference"] for d in report.anonymised] == ["OCC-2021-000001"]
    assert [r["rule"] for r in report.refused] == ["retention_history_not_verified"]
    assert "OCC-2021-000002" in report.refused[0]["message"] and "usine audit verify" in report.refused[0]["message"]
    assert snapshot(factory, dossiers["lapsed"]) == before


def test_a_crash_before_the_commit_leaves_the_dossier_untouched(factory, dossiers, monkeypatch):
    before = snapshot(factory, dossiers["closed"])

    def crash(*args, **kwargs):
        raise RuntimeError("coupure")

    monkeypatch.setattr(retention, "append_event", crash)
    with pytest.raises(RuntimeError):
        run_retention(factory, clock_at(AFTER_RETENTION))
    assert snapshot(factory, dossiers["closed"]) == before
    assert all(p.exists() for p in files_of(factory, dossiers["closed"]))


def test_files_left_by_a_crash_after_the_commit_are_deleted_by_the_next_run(factory, dossiers, monkeypatch):
    files = files_of(factory, dossiers["closed"])
    monkeypatch.setattr(retention, "purge_files", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("coupure")))
    with pytest.raises(RuntimeError):
        run_retention(factory, clock_at(AFTER_RETENTION))
    assert snapshot(factory, dossiers["closed"])["dossier"][3] is not None  # anonymised, committed
    assert all(p.exists() for p in files)
    monkeypatch.undo()
    report = run_retention(factory, clock_at("2032-01-12T03:30:00+01:00"))
    assert report.anonymised == [] and report.pending_files > 0
    assert "laissée(s) par une exécution interrompue" in "\n".join(report.lines())
    assert not any(p.exists() for p in files)
    assert all(p[4] is not None for p in snapshot(factory, dossiers["closed"])["pieces"])


def test_a_file_another_dossier_still_holds_is_kept(factory, dossiers):
    """The storage is content-addressed: the same content uploaded to an open dossier is one file."""
    with factory() as uow:
        piece = uow.session.scalars(select(m.Document).where(m.Document.dossier_id == dossiers["closed"])).first()
        uow.session.add(m.Document(dossier_id=dossiers["open"], kind=piece.kind, version=99, filename="copie.txt",
                                   content_type=piece.content_type, size=piece.size, sha256=piece.sha256,
                                   storage_key=piece.storage_key, uploaded_by="officer (scénario)",
                                   uploaded_role="officer", uploaded_at=piece.uploaded_at))
        uow.commit()
        shared = uow.storage.root / piece.storage_key
    run_retention(factory, clock_at(AFTER_RETENTION))
    assert shared.exists()


def test_the_company_contact_and_its_accounts_go_with_the_companys_last_dossier(factory, dossiers):
    with factory() as uow:
        create_user(uow=uow, clock=clock_at("2021-01-10T09:00:00+01:00"), username="cdurand", password="Mot de passe solide 42",
                    role="applicant", display_name="Claire Durand", siren="732829320")
    with factory.engine.begin() as conn:  # the company's other dossiers end too (test shortcut)
        conn.execute(update(m.Dossier.__table__).where(m.Dossier.id.in_([dossiers["open"], dossiers["closed_recently"]]))
                     .values(anonymised_at=datetime(2031, 1, 1, tzinfo=timezone.utc)))
    run_retention(factory, clock_at(AFTER_RETENTION))
    with factory() as uow:
        company = uow.session.scalar(select(m.Company))
        user = uow.session.scalar(select(ma.User).where(ma.User.siren == "732829320"))
        uow.session.expunge_all()
    assert company.email is None and company.name == "Atelier Garonne SAS"
    assert user.display_name == ANONYMISED and user.username.startswith("anonymise-") and not user.active


def test_the_person_export_lists_everything_held_about_them(factory, dossiers):
    with factory() as uow:
        create_user(uow=uow, clock=clock_at("2021-01-10T09:00:00+01:00"), username="cdurand", password="Mot de passe solide 42",
                    role="applicant", display_name="applicant (scénario)", siren="732829320")
        export = export_person(uow.session, "C.Durand@Atelier-Garonne.fr", now=datetime.fromisoformat(AFTER_RETENTION))
    assert export["email"] == CONTACT
    assert [(a["username"], a["role"], a["siren"]) for a in export["accounts"]] == [("cdurand", "applicant", "732829320")]
    assert "password_hash" not in json.dumps(export)
    assert export["companies"] == [{"siren": "732829320", "name": "Atelier Garonne SAS", "email": CONTACT}]
    refs = {d["reference"]: d for d in export["dossiers"]}
    assert "OCC-2021-000001" in refs and "contact de l'entreprise" in refs["OCC-2021-000001"]["why"]
    assert refs["OCC-2021-000001"]["status_label"] == "clôturé"
    assert export["letters"] and all(n["recipient_address"] == CONTACT for n in export["letters"])
    assert {n["kind"] for n in export["letters"]} >= {"candidacy_received", "vote_result", "payment_issued"}
    assert export["events"] and {e["command"] for e in export["events"]} >= {"submit_candidacy", "claim_payment"}
    assert export["pieces"] and all(len(p["sha256"]) == 64 for p in export["pieces"])
    text = "\n".join(person_export_lines(export))
    assert text.startswith(f"Données détenues par Usine pour « {CONTACT} » (état au 05/01/2032 03:30)")
    assert "Entreprises dont elle est le contact : 1" in text and "Atelier Garonne SAS (SIREN 732829320)" in text
    assert f"Courriers envoyés : {len(export['letters'])}" in text


def test_after_anonymisation_the_person_export_finds_nothing_of_the_dossier(factory, dossiers):
    run_retention(factory, clock_at(AFTER_RETENTION))
    with factory() as uow:
        export = export_person(uow.session, CONTACT)
    assert "OCC-2021-000001" not in {n["dossier"] for n in export["letters"]}
    assert "OCC-2021-000001" not in {e["dossier"] for e in export["events"]}


@pytest.mark.parametrize("value, reason", [
    ("0", "comprise entre 1 et 100 ans"),
    ('"dix"', "nombre entier d'années"),
    ("2.5", "nombre entier d'années"),
])
def test_a_bad_retention_figure_in_a_programme_file_is_refused_naming_the_field(tmp_path, value, reason):
    source = (FILES / "occitanie-prif.v1.toml").read_text("utf-8")
    assert "years_after_closure = 10" in source
    path = tmp_path / "occitanie-prif.v1.toml"
    path.write_text(source.replace("years_after_closure = 10", f"years_after_closure = {value}"), "utf-8")
    with pytest.raises(ProgrammeFileError) as refused:
        load_programme_file(path)
    assert refused.value.field == "retention.years_after_closure"
    assert reason in str(refused.value) and "occitanie-prif.v1.toml" in str(refused.value)


def test_every_programme_file_states_its_retention_and_a_file_without_one_gets_ten_years(tmp_path):
    for path in sorted(FILES.glob("*.toml")):
        assert "[retention]" in path.read_text("utf-8"), path.name
    source = (FILES / "naq-udf4.v1.toml").read_text("utf-8")
    path = tmp_path / "naq-udf4.v1.toml"
    path.write_text(source[:source.index("\n[retention]")] + "\n", "utf-8")
    assert load_programme_file(path).retention.years_after_closure == 10


# -- the command line --------------------------------------------------------------------------

def _usine(database_url: str, workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "USINE_DATABASE_URL": database_url,
           "USINE_STORAGE_DIR": str(workspace / "pieces"), "USINE_VAR_DIR": str(workspace / "var"),
           "USINE_CLOCK_START": AFTER_RETENTION}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=workspace,
                          env=env, timeout=300)


def test_usine_retention_run_reports_in_french_and_its_dry_run_writes_nothing(factory, dossiers, database_url, tmp_path):
    dry = _usine(database_url, tmp_path, "retention", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Simulation — rien n'a été écrit.")
    assert "2 dossier(s) seraient anonymisés" in dry.stdout
    with factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(m.Dossier).where(m.Dossier.anonymised_at.is_not(None))) == 0
    done = _usine(database_url, tmp_path, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert "Parcours régional Industrie du Futur : 2 dossier(s) anonymisés" in done.stdout
    again = _usine(database_url, tmp_path, "retention", "run", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["anonymised"] == []
    verify = _usine(database_url, tmp_path, "audit", "verify")
    assert verify.returncode == 0, verify.stdout


def test_usine_retention_export_person_writes_the_export_and_refuses_a_bad_address(factory, dossiers, database_url,
                                                                                   tmp_path):
    out = tmp_path / "export.json"
    done = _usine(database_url, tmp_path, "retention", "export-person", "--email", CONTACT, "--format", "json",
                  "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text("utf-8"))["companies"][0]["siren"] == "732829320"
    text = _usine(database_url, tmp_path, "retention", "export-person", "--email", CONTACT)
    assert text.returncode == 0 and "Courriers envoyés :" in text.stdout
    bad = _usine(database_url, tmp_path, "retention", "export-person", "--email", "pas-une-adresse")
    assert bad.returncode == 2 and "--email" in bad.stderr


# -- the scheduled flow ------------------------------------------------------------------------

@pytest.mark.prefect
def test_the_weekly_retention_flow_anonymises_what_is_due_as_the_command_does(prefect_harness, factory, dossiers):
    from workflows import runtime
    from workflows.deployments import SCHEDULES
    from workflows.retention import retention_run

    [schedule] = [s for s in SCHEDULES if s.flow == "retention_run"]
    assert schedule.module == "workflows.retention" and schedule.cron == "30 3 * * 0" and schedule.concurrency == 1
    with runtime.using(uow_factory=factory, clock=clock_at("2021-06-01T10:00:00+02:00"), sender=object()):
        result = retention_run(at=AFTER_RETENTION)
        again = retention_run(at=AFTER_RETENTION)
    assert [d["reference"] for d in result["anonymised"]] == ["OCC-2021-000001", "OCC-2021-000002"]
    assert again["anonymised"] == [] and again["refused"] == []
    assert verify_database(factory.engine, anchors=False).ok


def test_the_person_export_finds_what_an_account_did_under_its_username(factory, dossiers):
    # Through the API and the web an account acts under its username, not its display name.
    from services.commands import Actor, provide_documents

    with factory() as uow:
        create_user(uow=uow, clock=clock_at("2021-01-10T09:00:00+01:00"), username="cdurand", password="Mot de passe solide 42",
                    role="applicant", display_name="Claire Durand", siren="732829320")
    with factory() as uow:
        provide_documents(uow=uow, clock=clock_at("2021-06-01T10:00:00+02:00"),
                          actor=Actor(name="cdurand", role="applicant", siren="732829320"),
                          dossier_id=dossiers["open"], kinds=["rib"])
    with factory() as uow:
        export = export_person(uow.session, CONTACT)
    assert [(e["command"], e["actor"]) for e in export["events"] if e["actor"] == "cdurand"] == [("provide_documents", "cdurand")]
    assert any(p["uploaded_by"] == "cdurand" for p in export["pieces"])
