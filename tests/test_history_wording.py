"""Every event a dossier's history shows reads as a French sentence: over every scenario of the
repository (Occitanie, Pays de la Loire loans, Nouvelle-Aquitaine pathways), no event is shown by
its bare command id, and no sentence carries a `None`."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from db import models as m
from services.scenario import run_scenario
from services.uow import unit_of_work_factory
from services.wording import describe
from tests.helpers import SCENARIOS

FILES = sorted(p for folder in ("golden", "pathways", "audited-pathways") for p in (SCENARIOS / folder).glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_event_of_the_scenario_reads_as_a_french_sentence(database_url, path):
    run_scenario(json.loads(path.read_text("utf-8")), database_url=database_url)
    factory = unit_of_work_factory(database_url)
    with factory() as uow:
        events = [{"command": e.command, "data": e.data} for e in uow.session.scalars(select(m.Event))]
    factory.engine.dispose()
    for e in events:
        sentence = describe(e)
        assert sentence != e["command"], f"{e['command']} has no French reading"
        assert "None" not in sentence, sentence
