import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

import db.all_models  # noqa: F401
from db import models as m
from db.engine import make_engine
from db.migrate import upgrade
from db.models import Base, include_in_schema_comparison
from services.audit.verify import verify_dossier
from services.demo import load_demo
from states.lifecycle import STATES

ROOT = Path(__file__).resolve().parents[1]


def _empty_database(database_url):
    """The fixture's database already has the schema: start from nothing for migrations."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            conn.execute(text("DROP TABLE IF EXISTS dossiers_fts"))
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}"'))
    return engine


def test_the_migrations_build_exactly_the_models_schema(database_url):
    engine = _empty_database(database_url)
    upgrade(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_in_schema_comparison}),
                                Base.metadata)
    engine.dispose()
    assert diff == []
    # and the test fixtures get their schema back for the next tests
    if "postgresql" in database_url:
        with make_engine(database_url).begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def test_the_migrations_form_one_line_that_a_database_upgrades_to(database_url):
    """One head: a new migration revises it (no branch of its own), and an upgraded database
    records exactly that head — what readiness compares."""
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config, current_heads

    heads = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
    assert len(heads) == 1, f"migration heads to merge into one line: {heads}"
    engine = _empty_database(database_url)
    upgrade(database_url)
    assert current_heads(database_url) == heads
    engine.dispose()
    if "postgresql" in database_url:
        with make_engine(database_url).begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def test_the_demo_puts_dossiers_in_every_state_through_the_services(uow_factory):
    report = load_demo(uow_factory, dossiers=40, seed=7)
    assert set(report["by_state"]) == set(STATES)
    assert report["by_programme"]["occitanie-prif"] == 40 and report["refused"] == []
    # Pays de la Loire's lives: its lines' loans in repayment and in default, a dossier in instruction
    assert report["by_programme"]["pdl-ami-idf-exemple"] == 40 // 3
    with uow_factory() as uow:
        ids = uow.session.scalars(select(m.Dossier.id)).all()
        assert all(verify_dossier(uow.session, i).ok for i in ids)
        # played, not inserted: every dossier has its events, and they start with the candidacy
        firsts = uow.session.scalars(select(m.Event.command).where(m.Event.seq == 1)).all()
        assert len(firsts) == report["dossiers"] and set(firsts) <= {"submit_candidacy", "start_candidacy"}
        # every programme file is recorded (the seed-faithful ones and the §11 examples)
        files = len(list((ROOT / "programmes" / "files").glob("*.toml")))
        assert uow.session.scalar(select(func.count()).select_from(m.ProgrammeVersion)) == files


def test_usine_demo_then_history_reads_like_a_file_note(tmp_path):
    env = {"PATH": os.environ["PATH"], "USINE_DATABASE_URL": f"sqlite:///{tmp_path / 'u.db'}",
           "USINE_STORAGE_DIR": str(tmp_path / "docs"), "PYTHONPATH": str(ROOT),
           "USINE_CLOCK_START": "2022-06-15T09:00:00+02:00"}  # Occitanie's demo day: its pathway alive
    run = lambda *a: subprocess.run([sys.executable, "-m", "cli.main", *a], capture_output=True, text=True,  # noqa: E731
                                    cwd=tmp_path, env=env)
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0
    # the programmes recorded are named as people know them, not by their files' keys
    assert "Parcours régional Industrie du Futur (version 1)" in upgraded.stdout
    assert "occitanie-prif" not in upgraded.stdout
    demo = run("demo", "--dossiers", "24", "--json")
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout)["by_programme"] == {"occitanie-prif": 24, "pdl-ami-idf-exemple": 8}
    listing = run("dossier", "list", "--state", "closed")
    assert listing.returncode == 0 and "closed" in listing.stdout
    ref = listing.stdout.split()[1]
    hist = run("dossier", "history", ref)
    assert hist.returncode == 0
    assert f"Historique du dossier {ref}" in hist.stdout
    assert "candidature déposée" in hist.stdout and "dossier soldé" in hist.stdout
    again = run("demo")
    assert "démo non rechargée" in again.stdout
    refused = run("dossier", "do", ref, "take_for_review", "--as", "officer")
    assert refused.returncode == 1 and "not_allowed" in refused.stderr
