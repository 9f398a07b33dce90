"""A dossier's version counts its events: every command that changes a dossier writes it once,
with its one event, so that after n events the row is at version n + 1. `usine audit verify`
relies on it to tell a last event that was backdated (as many events as the version counts)
from a tail that was cut (fewer): checked here over every scenario of the repository and over
a demo of the three programmes, sweeps included."""
from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import func, select

from db import models as m
from rules.calendar import PARIS
from services.demo import load_demo
from services.scenario import run_scenario
from tests.helpers import SCENARIOS

FILES = sorted(p for folder in ("golden", "audited", "pathways", "audited-pathways")
               for p in (SCENARIOS / folder).glob("*.json"))
LAST_SEQ = select(func.max(m.Event.seq)).where(m.Event.dossier_id == m.Dossier.id).scalar_subquery()


def _miscounted(session) -> list[tuple]:
    return [row for row in session.execute(select(m.Dossier.reference, m.Dossier.status, m.Dossier.version, LAST_SEQ))
            if row[2] != (row[3] or 0) + 1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_after_every_scenario_each_dossier_is_at_the_version_its_events_count(database_url, path):
    from services.uow import unit_of_work_factory

    run_scenario(json.loads(path.read_text("utf-8")), database_url=database_url)
    factory = unit_of_work_factory(database_url)
    with factory() as uow:
        assert _miscounted(uow.session) == []
    factory.engine.dispose()


def test_after_the_demo_of_the_three_programmes_each_dossier_is_at_the_version_its_events_count(uow_factory):
    load_demo(uow_factory, dossiers=24, seed=3, as_of=datetime(2025, 6, 15, 9, 0, tzinfo=PARIS))
    with uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(m.Dossier)) > 40
        assert _miscounted(uow.session) == []
