"""The dossier search through SQLite's FTS5 trigram table (`dossiers_fts`), the same rows as the
LIKE on `search_text` that PostgreSQL answers from its trigram index (docs/performance.md,
Search): substrings of a SIREN, a reference, a name typed without its accents, short searches,
FTS5 syntax taken as text; and the index exact after the writes that change a dossier's text."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event, select
from web_support import GARONNE, World, actor, seed_users, use_fast_passwords

from db import models as m
from db.engine import make_engine
from db.migrate import alembic_config, upgrade
from rules.calendar import paris_date
from services import deadlines
from services.assignment import assign_officer
from services.demo_teams import seed_demo_teams
from services.search import escape_like, fts_phrase, search_dossiers

ODD = 'Atelier "Zéro" * OR -moins: (deux) NEAR ^trois'


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    seed_demo_teams(uow_factory, w.clock)
    return w


@pytest.fixture
def three(world):
    forges = world.dossier("eligibility_review", company={**GARONNE, "name": "Forges Électriques de l'Œuvre"})
    odd = world.dossier("eligibility_review", company={**GARONNE, "name": ODD})
    laiterie = world.dossier("eligibility_review", company={**GARONNE, "name": "Laiterie du Causse"})
    return {"forges": forges, "odd": odd, "laiterie": laiterie}


def _found(world, q: str) -> set[int]:
    with world.uow_factory() as uow:
        return {x["id"] for x in search_dossiers(uow, actor(world.uow_factory, "agent.occitanie"), q=q,
                                                 limit=200)["items"]}


def _like(world, needle: str) -> set[int]:
    """What main's search found: the LIKE on the folded text, whatever the database."""
    with world.uow_factory() as uow:
        return set(uow.session.scalars(select(m.Dossier.id).where(
            m.Dossier.search_text.like(f"%{escape_like(needle)}%", escape="\\"))))


def test_a_dossier_is_found_by_part_of_its_siren_its_reference_or_its_name_without_accents(world, three):
    with world.uow_factory() as uow:
        reference = uow.session.get(m.Dossier, three["forges"]).reference
    everyone = set(three.values())
    assert _found(world, GARONNE["siren"][3:9]) == everyone  # the three share Garonne's SIREN
    part = deadlines.fold_needle(reference[-5:])
    assert three["forges"] in _found(world, part) and _found(world, part) == _like(world, part)
    assert _found(world, reference.lower()) == {three["forges"]}
    assert _found(world, "ELECTRIQUES") == _found(world, "électriques") == {three["forges"]}
    assert _found(world, "l'oeuvre") == _found(world, "L'ŒUVRE") == {three["forges"]}
    assert _found(world, "causse") == {three["laiterie"]}
    assert _found(world, "électriques de l'œuvre du causse") == set()  # a phrase, not a set of words


def test_a_search_of_one_or_two_characters_is_the_scan_and_finds_the_same(world, three):
    assert _found(world, "du") == _like(world, "du") == {three["laiterie"]}
    assert _found(world, "Œ") == _like(world, "oe") == {three["forges"]}  # « Œ » folds to two characters
    assert _found(world, "*") == {three["odd"]}
    assert _found(world, "z") == _like(world, "z")


@pytest.mark.parametrize("q, odd", [
    ('"zéro"', True), ('"zero" *', True), ("* or -moins:", True), ("-moins", True), ("(deux)", True),
    ("near ^trois", True), ("moins: (deux", True),
    ('x" OR "a', False), ("search_text:forges", False), ("forges OR laiterie", False), ("forg*", False),
    ("-forges", False), ('"', None), ('""', None), ("NEAR(forges laiterie)", False), ("^forges", False),
])
def test_fts_syntax_in_a_search_is_text_to_find(world, three, q, odd):
    found = _found(world, q)
    if odd is not None:
        assert found == ({three["odd"]} if odd else set()), q
    assert found == _like(world, deadlines.fold_needle(q)), q


def test_every_substring_finds_what_the_like_finds(world, three):
    """Each 3 to 7 character piece of each dossier's text: the same dossiers by the index as by the scan."""
    with world.uow_factory() as uow:
        texts = uow.session.scalars(select(m.Dossier.search_text)).all()
    pieces = {t[i:i + n] for t in texts for n in (3, 4, 7) for i in range(len(t) - n + 1)}
    pieces = {p for p in pieces if "\n" not in p}
    for piece in sorted(pieces)[::3]:
        assert _found(world, piece) == _like(world, deadlines.fold_needle(piece)), piece


def test_the_search_reads_the_fts_table_on_sqlite_and_the_like_on_postgresql(world, three):
    engine = world.uow_factory.engine
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        _found(world, "causse")
        _found(world, "du")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    long_ = [s for s in seen if "dossiers_fts" in s[0] or "search_text LIKE" in s[0]]
    if engine.dialect.name != "sqlite":
        assert long_ and not [s for s in long_ if "dossiers_fts" in s[0]]
        return
    with_fts = [s for s in seen if "dossiers_fts MATCH" in s[0]]
    assert len(with_fts) == 2  # the capped count and the page, for « causse »; « du » is the LIKE
    assert [s for s in seen if "search_text LIKE" in s[0]]
    with engine.connect() as conn:
        for statement, parameters in with_fts:
            details = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            assert any("dossiers_fts VIRTUAL TABLE INDEX" in d for d in details), details
            assert "SCAN dossiers" not in details, details  # the rows are not read one by one


# -- the index kept exact -------------------------------------------------------------------------

def _index_terms(conn) -> Counter:
    """What the FTS index holds: (dossier id, position, trigram), read from the index itself
    (`fts5vocab`), not from `dossiers` (the external content)."""
    conn.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_terms USING fts5vocab(main, dossiers_fts, instance)")
    return Counter(tuple(r) for r in conn.exec_driver_sql("SELECT doc, offset, term FROM temp.fts_terms"))


def _recomputed_terms(conn) -> Counter:
    """The same from each dossier's text recomputed as the write path computes it."""
    terms: Counter = Counter()
    for row in conn.execute(select(m.Dossier.id, m.Dossier.reference, m.Dossier.company_facts,
                                   m.Dossier.consultant, m.Dossier.officer)):
        folded = deadlines.search_text_of(row.reference, row.company_facts, row.consultant, row.officer)
        terms.update((row.id, i, folded[i:i + 3].lower()) for i in range(len(folded) - 2))
    return terms


def assert_index_exact(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert _index_terms(conn) == _recomputed_terms(conn)
            conn.exec_driver_sql("INSERT INTO dossiers_fts(dossiers_fts) VALUES ('integrity-check')")
            conn.rollback()
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the FTS table is SQLite's (PostgreSQL reads its trigram index)")
    return database_url


def test_the_index_follows_a_change_of_company_name_an_officer_and_a_deletion(sqlite_only, world, three):
    assert_index_exact(sqlite_only)
    today = paris_date(world.clock.now())
    with world.uow_factory() as uow:
        d = uow.session.get(m.Dossier, three["laiterie"])
        d.company_facts = {**d.company_facts, "name": "Fromagerie des Grands Causses"}
        deadlines.mark(uow.session, d.id, today)
        uow.commit()
    assert _found(world, "laiterie") == set() and _found(world, "fromagerie") == {three["laiterie"]}
    assert_index_exact(sqlite_only)
    world.run(assign_officer, "cheffe.occitanie", dossier_id=three["forges"], officer="agent2.occitanie")
    assert three["forges"] in _found(world, "agent2.occ")
    assert_index_exact(sqlite_only)
    import sqlite3

    with sqlite3.connect(sqlite_only.removeprefix("sqlite:///")) as raw:  # a dossier gone: its trigrams with it
        raw.execute("DELETE FROM dossiers WHERE id = ?", (three["odd"],))  # (foreign keys unchecked here)
    assert_index_exact(sqlite_only)
    assert _found(world, "zero") == set()


def test_the_index_follows_the_sweeps_batch_writes(sqlite_only, uow_factory, clock, actors):
    from datetime import datetime

    from services.clock import FrozenClock
    from services.sweep import sweep
    from tests.sweep_support import dossiers_with_open_request

    dossiers_with_open_request(uow_factory, clock, actors, count=4, requested_at="2021-03-01T10:00:00+01:00")
    assert_index_exact(sqlite_only)
    report = sweep(uow_factory=uow_factory, clock=FrozenClock(datetime.fromisoformat("2021-04-01T06:00:00+02:00")))
    assert report.lapsed == 4
    assert_index_exact(sqlite_only)
    # and a batch refresh as the migrations and the bench builders run it
    engine = make_engine(sqlite_only)
    with engine.begin() as conn:
        conn.execute(m.Dossier.__table__.update().values(search_text=None))
        assert _index_terms(conn) == Counter()
        deadlines.backfill(conn, paris_date(datetime.fromisoformat("2021-04-01T06:00:00+02:00")), batch=3)
        assert _index_terms(conn) == _recomputed_terms(conn)
    engine.dispose()


def _fts_objects(url: str) -> dict[str, str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE name LIKE 'dossiers_fts%' "
                                    "AND type IN ('table', 'trigger')").all()
    engine.dispose()
    return dict(rows)


def test_the_migration_builds_the_models_fts_objects_and_indexes_the_existing_rows(sqlite_only, world, three, tmp_path):
    from alembic import command

    assert set(_fts_objects(sqlite_only)) >= {"dossiers_fts", "dossiers_fts_insert", "dossiers_fts_delete",
                                               "dossiers_fts_update"}
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}"
    upgrade(migrated)
    assert _fts_objects(migrated) == _fts_objects(sqlite_only)
    # a database of dossiers made before 0220: the migration indexes them all
    engine = make_engine(sqlite_only)
    with engine.begin() as conn:
        for trigger in ("dossiers_fts_insert", "dossiers_fts_delete", "dossiers_fts_update"):
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
        conn.exec_driver_sql("DROP TABLE dossiers_fts")
    engine.dispose()
    command.stamp(alembic_config(sqlite_only), "0210_dashboard_figures")
    # up to 0220 only: the later migrations' objects are already there (the models built them)
    upgrade(sqlite_only, "0220_sqlite_search_fts")
    assert_index_exact(sqlite_only)
    assert _found(world, "causse") == {three["laiterie"]}


def test_the_phrase_doubles_its_quotes():
    assert fts_phrase('a "b" c') == '"a ""b"" c"'
