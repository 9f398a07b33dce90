"""The flows' deployments: one per flow, cron schedules in Europe/Paris, sweeps never
overlapping (a deployment concurrency limit of 1; a run that would overlap is cancelled — the
next one does the same work).

`SCHEDULES` below is the one place the schedules are declared. Two things are made from it:

* `python -m workflows.deployments` serves them against the Prefect API of the environment
  (PREFECT_API_URL): what `usine serve` starts. The schedules can be overridden by environment
  variables (USINE_CRON_SWEEP, USINE_CRON_DELIVER, USINE_CRON_DIGEST, USINE_CRON_AUDIT_ANCHOR,
  USINE_CRON_RETENTION, USINE_CRON_DASHBOARD), e.g. "* * * * *" in tests;
* `prefect.yaml`, the same deployments for a work pool (`prefect deploy --all`, docs/deploy.md),
  is generated: `python -m workflows.deployments --write-prefect-yaml` rewrites it, and
  `tests/test_flows_deployments.py` fails when the committed file differs from what this module
  makes of SCHEDULES."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEZONE = "Europe/Paris"


@dataclass(frozen=True)
class Schedule:
    flow: str
    env: str
    cron: str
    concurrency: int | None
    description: str
    module: str = "workflows.flows"

    def effective_cron(self) -> str:
        return os.environ.get(self.env) or self.cron


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("sweep_deadlines", "USINE_CRON_SWEEP", "0 6 * * *", 1,
             "Chaque jour à 6 h : relances J+7/J+14, dernier rappel J+21, caducité J+30, délais de paiement, "
             "avis d'ouverture et de clôture des appels, rappels d'ordre du jour."),
    Schedule("deliver_notifications", "USINE_CRON_DELIVER", "*/5 * * * *", 1,
             "Toutes les 5 minutes : envoi des messages en attente par SMTP (reprises, lettres mortes)."),
    Schedule("daily_digest", "USINE_CRON_DIGEST", "30 7 * * 1-5", 1,
             "Jours ouvrés à 7 h 30 : récapitulatif des échéances à 7 jours de chaque chargé de mission."),
    Schedule("anchor_history", "USINE_CRON_AUDIT_ANCHOR", "15 0 * * *", 1,
             "Chaque nuit à 0 h 15 : ancrage des têtes de chaîne d'événements (audit).", "workflows.audit_anchor"),
    Schedule("retention_run", "USINE_CRON_RETENTION", "30 3 * * 0", 1,
             "Chaque dimanche à 3 h 30 : RGPD, anonymisation des dossiers clôturés dont la durée de conservation "
             "est échue et suppression de leurs pièces.", "workflows.retention"),
    Schedule("refresh_dashboard", "USINE_CRON_DASHBOARD", "*/15 * * * *", 1,
             "Toutes les 15 minutes : recalcul des chiffres du tableau de bord des programmes (la page lit le "
             "dernier calcul et en donne l'heure)."),
)

DEPLOYMENT_NAME = "usine"            # served by `usine serve` (prefect.serve)
POOL_DEPLOYMENT_NAME = "usine-pool"  # deployed from prefect.yaml to the work pool
WORK_POOL = "usine-process"
PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def runner_deployments():
    """RunnerDeployments for `prefect.serve` (the flows imported by module path, so the runner
    finds them from any working directory)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from workflows import audit_anchor, flows, retention

    modules = {module.__name__: module for module in (flows, audit_anchor, retention)}

    out = []
    for schedule in SCHEDULES:
        # The scheduled flows live in these modules (the module paths prefect.yaml's entrypoints
        # record): a schedule naming another module, or a flow its module lacks, is an error of
        # the table, never skipped.
        flow = getattr(modules[schedule.module], schedule.flow)
        limit = (ConcurrencyLimitConfig(limit=schedule.concurrency,
                                        collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
                 if schedule.concurrency else None)
        out.append(flow.to_deployment(
            DEPLOYMENT_NAME, schedules=[Cron(schedule.effective_cron(), timezone=TIMEZONE)],
            concurrency_limit=limit, description=schedule.description, tags=["usine"],
            entrypoint_type=EntrypointType.MODULE_PATH))
    return out


def serve_all() -> None:
    from prefect import serve

    serve(*runner_deployments(), pause_on_shutdown=False, print_starting_message=True)


_YAML_HEADER = f"""\
# GENERATED from workflows/deployments.py (SCHEDULES) by
#   python -m workflows.deployments --write-prefect-yaml
# Do not edit by hand: change SCHEDULES and regenerate (tests/test_flows_deployments.py checks it).
#
# Usine's flows for a Prefect server with a work pool (the scale-out path: docs/deploy.md).
# `usine serve` serves the same flows locally without a work pool.
#
#   prefect work-pool create {WORK_POOL} --type process
#   USINE_HOME=/srv/usine prefect --no-prompt deploy --all   # from this folder
#   prefect worker start --pool {WORK_POOL}                  # on each worker machine, as many as wanted
#
# Schedules are in {TIMEZONE}. Each deployment runs one at a time (a run that would overlap
# the previous one is cancelled: the next run does the same work, and the sweeps' unique keys
# make a race harmless anyway).
name: usine
prefect-version: 3.8.8

build: null
push: null

# The workers run the flows from an installed copy of Usine (pip install -e . in USINE_HOME,
# the worker's virtualenv being Usine's): nothing to download.
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{{{{ $USINE_HOME }}}}"

definitions:
  work_pool: &process_pool
    name: {WORK_POOL}
    work_queue_name: default
    job_variables: {{}}
  one_at_a_time: &one_at_a_time
    limit: 1
    collision_strategy: CANCEL_NEW

deployments:
"""


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_prefect_yaml() -> str:
    """The text of prefect.yaml, made from SCHEDULES (the default crons, not the overrides)."""
    blocks = []
    for schedule in SCHEDULES:
        if schedule.concurrency not in (None, 1):
            raise ValueError(f"{schedule.flow} : prefect.yaml ne déclare que la limite 1 (one_at_a_time)")
        entrypoint = schedule.module.replace(".", "/") + ".py:" + schedule.flow
        lines = [
            f"  - name: {POOL_DEPLOYMENT_NAME}",
            f"    entrypoint: {entrypoint}",
            f"    description: {_yaml_string(schedule.description)}",
            "    tags: [usine]",
            "    parameters: {}",
            "    schedules:",
            f"      - cron: {_yaml_string(schedule.cron)}",
            f"        timezone: {_yaml_string(TIMEZONE)}",
            "        active: true",
        ]
        if schedule.concurrency:
            lines.append("    concurrency_limit: *one_at_a_time")
        lines.append("    work_pool: *process_pool")
        blocks.append("\n".join(lines) + "\n")
    return _YAML_HEADER + "\n".join(blocks)


CRASH_AUTOMATION_NAME = "usine : exécutions sans battement marquées Crashed"


def crash_detection_automation(within_seconds: int = 90):
    """The automation that marks Crashed a flow run whose heartbeats stopped (its worker or its
    machine died): Prefect's own server does nothing of the kind by itself — such a run stays
    Running and keeps its deployment's concurrency slot. Needs the workers to emit heartbeats
    (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, at least 30 s; `within_seconds` well above it). The
    recipe of Prefect's "detect zombie flows" guide."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=CRASH_AUTOMATION_NAME,
        description="Une exécution qui n'envoie plus de battement de cœur est marquée « Crashed » : "
                    "son créneau de concurrence est libéré et la prochaine exécution reprend le travail.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"Aucun battement de cœur depuis {within_seconds} s : "
                                            "le worker ou sa machine s'est arrêté.")],
    )


def create_crash_automation(within_seconds: int = 90) -> None:
    """Create the automation on the server of PREFECT_API_URL, once (an existing one of that name
    is left as it is)."""
    from prefect.automations import Automation

    try:
        existing = Automation.read(name=CRASH_AUTOMATION_NAME)
    except ValueError:
        existing = None
    if existing:
        print(f"Automatisation « {CRASH_AUTOMATION_NAME} » déjà présente.")
        return
    crash_detection_automation(within_seconds).create()
    print(f"Automatisation « {CRASH_AUTOMATION_NAME} » créée (délai : {within_seconds} s).")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--write-prefect-yaml"]:
        PREFECT_YAML.write_text(render_prefect_yaml(), encoding="utf-8")
        print(f"{PREFECT_YAML} réécrit depuis SCHEDULES.")
    elif args == ["--print-prefect-yaml"]:
        sys.stdout.write(render_prefect_yaml())
    elif args == ["--create-crash-automation"]:
        create_crash_automation()
    elif not args:
        serve_all()
    else:
        sys.exit("usage : python -m workflows.deployments "
                 "[--write-prefect-yaml | --print-prefect-yaml | --create-crash-automation]")


if __name__ == "__main__":
    main()
