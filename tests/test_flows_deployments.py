"""The schedules are declared once (`workflows.deployments.SCHEDULES`): `usine serve`'s
deployments are made from them, and prefect.yaml — what `prefect deploy --all` reads for a work
pool — is generated from them and must match."""
from __future__ import annotations

from pathlib import Path

import yaml

from workflows import deployments
from workflows.deployments import (
    POOL_DEPLOYMENT_NAME,
    SCHEDULES,
    TIMEZONE,
    WORK_POOL,
    render_prefect_yaml,
)

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def test_the_committed_prefect_yaml_is_exactly_what_the_schedules_generate():
    assert PREFECT_YAML.read_text(encoding="utf-8") == render_prefect_yaml(), (
        "prefect.yaml differs from workflows.deployments.SCHEDULES: "
        "run `python -m workflows.deployments --write-prefect-yaml`")


def test_prefect_yaml_deploys_every_flow_on_its_cron_in_paris_time_one_run_at_a_time_on_the_process_pool():
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    declared = {d["entrypoint"]: d for d in document["deployments"]}
    assert len(declared) == len(SCHEDULES)
    for schedule in SCHEDULES:
        d = declared[schedule.module.replace(".", "/") + ".py:" + schedule.flow]
        assert d["name"] == POOL_DEPLOYMENT_NAME
        assert d["schedules"] == [{"cron": schedule.cron, "timezone": TIMEZONE, "active": True}]
        assert d["description"] == schedule.description
        assert d["concurrency_limit"] == {"limit": schedule.concurrency, "collision_strategy": "CANCEL_NEW"}
        assert d["work_pool"]["name"] == WORK_POOL


def test_a_schedule_changed_in_one_place_changes_both_the_served_deployments_and_prefect_yaml(monkeypatch):
    changed = tuple(s if s.flow != "deliver_notifications" else type(s)(s.flow, s.env, "*/10 * * * *",
                                                                        s.concurrency, s.description, s.module)
                    for s in SCHEDULES)
    monkeypatch.setattr(deployments, "SCHEDULES", changed)
    monkeypatch.delenv("USINE_CRON_DELIVER", raising=False)
    generated = yaml.safe_load(render_prefect_yaml())
    [deliver] = [d for d in generated["deployments"] if d["entrypoint"].endswith(":deliver_notifications")]
    assert deliver["schedules"][0]["cron"] == "*/10 * * * *"
    [runner] = [d for d in deployments.runner_deployments() if d.entrypoint.endswith("deliver_notifications")]
    assert runner.name == deployments.DEPLOYMENT_NAME
    assert runner.schedules[0].schedule.cron == "*/10 * * * *"
    assert runner.concurrency_limit == 1
