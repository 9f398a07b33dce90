"""The officer's queue cannot fall back to computing every dossier's deadline: its statements
are counted, and the plan of each page statement is read (EXPLAIN) — no subquery per dossier,
the stored deadline's index read in order, no sort of the scope. The planner is asked to avoid
sequential scans and sorts where it can (the test tables are small, where a scan is cheaper):
what is checked is that an index path giving the page in order exists and is taken."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import event
from web_support import World, actor, seed_users, use_fast_passwords

from services import commands
from services.assignment import assign_officer
from services.demo_teams import seed_demo_teams
from web import queue as web_queue
from web.queue import QueueFilters, work_queue

# ix_dossiers_officer_queue: « À moi » and « Non affectés » (work sharing) read in the queue's order.
# ix_dossiers_programme_status_queue: the queue filtered by one state (migration 0230).
QUEUE_INDEXES = {"ix_dossiers_queue", "ix_dossiers_programme_queue", "ix_dossiers_officer_queue",
                 "ix_dossiers_programme_status_queue"}


@pytest.fixture
def world(uow_factory, monkeypatch):
    use_fast_passwords(monkeypatch)
    w = World(uow_factory)
    seed_users(uow_factory, w.clock)
    seed_demo_teams(uow_factory, w.clock)
    ids = [w.dossier("eligibility_review") for _ in range(7)]
    for did in ids[:3]:
        w.run(commands.request_documents, "agent.occitanie", dossier_id=did, kinds=["rib"])
    # work sharing: two handed over to a team-mate (« À mon équipe »), four never taken (« Non affectés »)
    for did in ids[5:]:
        w.run(assign_officer, "cheffe.occitanie", dossier_id=did, officer="agent2.occitanie")
    for _ in range(4):
        w.dossier("submitted")
    return w


def _statements(engine, run):
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        out = run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return out, seen


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _check_plan(engine, statement: str, parameters) -> None:
    indexes = set(QUEUE_INDEXES)
    if "next_deadline_at IS NULL" in statement:
        # the dossiers without a deadline, oldest submission first: that index is in order too
        indexes.add("ix_dossiers_submitted")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
            plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
            nodes = list(_nodes(plan))
            assert not [n for n in nodes if n.get("Parent Relationship") == "SubPlan" or "Subplan Name" in n], plan
            assert {n.get("Index Name") for n in nodes} & indexes, plan
            assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")], plan
        else:
            details = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            assert any(name in d for d in details for name in indexes), details
            assert not [d for d in details if "TEMP B-TREE" in d or "CORRELATED" in d], details
        conn.rollback()


@pytest.mark.parametrize("filters, expected", [
    (QueueFilters(), 11), (QueueFilters(state="eligibility_review"), 7),
    (QueueFilters(assigned="me"), 5), (QueueFilters(assigned="team"), 7), (QueueFilters(assigned="none"), 4)],
    ids=["default", "state", "assigned-me", "assigned-team", "unassigned"])
def test_each_queue_page_is_a_capped_count_and_an_index_range_read_in_order(world, monkeypatch, filters, expected):
    monkeypatch.setattr(web_queue, "PAGE_SIZE", 3)
    officer = actor(world.uow_factory, "agent.occitanie")
    engine = world.uow_factory.engine
    cursor, walked, pages = None, [], 0
    while True:
        def one_page():
            with world.uow_factory() as uow:
                return work_queue(uow, officer, QueueFilters(**{**filters.__dict__, "cursor": cursor,
                                                               "page": pages + 1}), world.clock.now().date())

        result, seen = _statements(engine, one_page)
        seen = [(s, p) for s, p in seen if not s.startswith(("BEGIN", "SET"))]
        pages += 1
        walked += [x["id"] for x in result["items"]]
        # the capped count, then one range read — two when the page crosses from the dossiers
        # with a deadline to those without
        assert 2 <= len(seen) <= 3, [s for s, _ in seen]
        assert "LIMIT" in seen[0][0] and "count(" in seen[0][0].lower()
        for statement, parameters in seen[1:]:
            assert "ORDER BY" in statement
            _check_plan(engine, statement, parameters)
        cursor = result["next_cursor"]
        if not cursor:
            break
    assert len(walked) == len(set(walked)) == result["total"] == expected
