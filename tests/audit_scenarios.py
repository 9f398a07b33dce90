"""Audit tests' helper: play a golden scenario file's steps through the real services onto a
given database (the scenario runner makes its own database; the audit needs several dossiers
in one)."""
from __future__ import annotations

import json

from rules.errors import RuleViolation
from services import commands
from services.clock import FrozenClock
from services.scenario import DISPATCH, parse_instant
from services.sweep import sweep
from tests.helpers import SCENARIOS

SHARED = SCENARIOS / "golden"


def scenario(name: str) -> dict:
    return json.loads((SHARED / f"{name}.json").read_text("utf-8"))


def play(uow_factory, name: str) -> int:
    """The dossier id; refused steps are skipped as the runner does (nothing written)."""
    return play_document(uow_factory, scenario(name))


def play_document(uow_factory, doc: dict) -> int:
    """`play`, for a scenario given as data (a golden file changed by a test)."""
    clock = FrozenClock(parse_instant(doc["steps"][0]["at"], "at"))
    dossier_id = None
    for step in doc["steps"]:
        clock.set(parse_instant(step["at"], "at"))
        if step["do"] == "sweep":
            sweep(uow_factory=uow_factory, clock=clock)
            continue
        actor = commands.Actor(name=f"{step['as']} (scénario)", role=step["as"])
        try:
            with uow_factory() as uow:
                out = DISPATCH[step["do"]][1](step, uow, clock, actor, dossier_id, doc["programme"])
        except RuleViolation:
            continue
        if step["do"] == "submit_candidacy":
            dossier_id = out.dossier_id
    return dossier_id
