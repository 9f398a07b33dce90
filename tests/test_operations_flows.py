"""A flow run stamps the events it writes with its own Prefect flow run id (docs/operations.md):
from a dossier's history to the run in Prefect's UI and to its log lines."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from db import models as m
from tests.sweep_support import dossiers_with_open_request
from workflows import runtime
from workflows.flows import sweep_deadlines

pytest_plugins = ["tests.conftest_prefect"]
pytestmark = pytest.mark.prefect


def test_the_events_of_a_sweep_flow_run_carry_that_runs_id(prefect_harness, uow_factory, clock, actors):
    from prefect import get_client

    [d] = dossiers_with_open_request(uow_factory, clock, actors, count=1, requested_at="2021-03-01T10:00:00+01:00")
    with runtime.using(uow_factory=uow_factory, clock=clock, sender=object()):
        report = sweep_deadlines(at="2021-04-06T06:00:00+02:00")
    assert report["lapsed"] == 1
    with uow_factory() as uow:
        command, request_id = uow.session.execute(select(m.Event.command, m.Event.request_id)
                                                  .where(m.Event.dossier_id == d).order_by(m.Event.seq.desc())).first()
    assert command == "lapse"
    assert re.fullmatch(r"flow-[0-9a-f-]{36}", request_id), request_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(request_id.removeprefix("flow-")))
        assert client.read_flow(run.flow_id).name == "sweep-deadlines"
