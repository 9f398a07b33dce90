"""The RGPD retention run (services.retention): a thin Prefect flow, scheduled weekly
(workflows.deployments.SCHEDULES). Each dossier is its own unit of work and the files go after
the commits: a run that fails or is cancelled midway leaves every dossier either anonymised or
untouched, and the next run finishes the job (files included)."""
from __future__ import annotations

from prefect import flow, get_run_logger

from services.clock import FrozenClock
from services.retention import run_retention
from workflows import runtime
from workflows.flows import observed


@flow(name="retention-run", description="RGPD : anonymisation des dossiers clôturés dont la durée de conservation est échue.")
def retention_run(at: str | None = None, dry_run: bool = False) -> dict:
    """Anonymise the closed dossiers past their programme's retention, as of `at` (ISO 8601 with
    its offset; default the service clock), and delete their pieces' files."""
    with observed("retention-run"):
        logger = get_run_logger()
        rt = runtime.current()
        clock = FrozenClock(runtime.instant(at, rt.clock))
        report = run_retention(rt.uow_factory, clock, dry_run=dry_run)
        for line in report.lines():
            logger.info("%s", line)
        for refused in report.refused:
            logger.warning("%s", refused["message"])
        return report.as_dict()
