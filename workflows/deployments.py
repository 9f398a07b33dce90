"""The flows' deployments: one per flow, cron schedules in Europe/Paris, sweeps never
overlapping (a deployment concurrency limit of 1; a run that would overlap is cancelled — the
next one does the same work). `prefect.yaml` declares the same for a work pool.

`python -m workflows.deployments` serves them against the Prefect API of the environment
(PREFECT_API_URL): what `usine serve` starts. The schedules can be overridden by environment
variables (USINE_CRON_SWEEP, USINE_CRON_DELIVER, USINE_CRON_DIGEST, USINE_CRON_AUDIT_ANCHOR),
e.g. "* * * * *" in tests."""
from __future__ import annotations

import os
from dataclasses import dataclass

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
             "chaque jour à 6 h : relances J+7/J+14, dernier rappel J+21, caducité J+30, délais de paiement, "
             "avis d'ouverture et de clôture des appels, rappels d'ordre du jour"),
    Schedule("deliver_notifications", "USINE_CRON_DELIVER", "*/5 * * * *", 1,
             "toutes les 5 minutes : envoi des messages en attente"),
    Schedule("daily_digest", "USINE_CRON_DIGEST", "30 7 * * 1-5", 1,
             "jours ouvrés à 7 h 30 : récapitulatif des échéances à 7 jours de chaque chargé de mission"),
    Schedule("anchor_history", "USINE_CRON_AUDIT_ANCHOR", "15 0 * * *", 1,
             "chaque nuit à 0 h 15 : ancrage des têtes de chaîne d'événements (audit)", "workflows.audit_anchor"),
)

DEPLOYMENT_NAME = "usine"


def runner_deployments():
    """RunnerDeployments for `prefect.serve` (the flows imported by module path, so the runner
    finds them from any working directory)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    import importlib

    out = []
    for schedule in SCHEDULES:
        try:
            module = importlib.import_module(schedule.module)
        except ModuleNotFoundError as exc:
            if exc.name != schedule.module:
                raise
            continue  # a room not installed in this copy (e.g. the audit flows)
        flow = getattr(module, schedule.flow)
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


if __name__ == "__main__":
    serve_all()
