"""The Prefect flows: thin shells over the services, one run = one sweep, one delivery, one digest.

Every flow takes an optional `at` (ISO 8601 instant with its offset): the run happens as of
that instant — how tests and the scenario tooling replay a day without touching the system
clock. Without it, the service clock (`services.runtime.default_clock()`, which honours
USINE_CLOCK_START for the demo workspace)."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from datetime import timedelta

from prefect import flow, get_run_logger

from rules.calendar import paris_date
from services.clock import FrozenClock
from services.dashboard import refresh as refresh_dashboard_figures
from services.delivery import DEFAULT_BATCH_SIZE as DELIVERY_BATCH
from services.delivery import LEASE as DELIVERY_LEASE
from services.delivery import deliver
from services.digest import HORIZON_DAYS, queue_daily_digests
from services.sweep import DEFAULT_BATCH_SIZE as SWEEP_BATCH
from services.sweep import PARTS, SweepReport, sweep_part
from services.telemetry import add_json_handler, bound_request_id
from workflows import runtime

log = logging.getLogger("usine.flows")


@contextmanager
def observed(name: str):
    """A flow run's id as the request id of everything it logs and writes (its events'
    `request_id`: `flow-<Prefect flow run id>`, or a new `flow-…` outside Prefect), one JSON line
    at its end (`usine.flows`: flow, outcome, duration). Usine's own loggers write JSON lines
    on stderr when USINE_LOG_FORMAT=json (what `usine serve` sets): Prefect's handlers, which
    send the run's lines to its UI, stay as they are."""
    if os.environ.get("USINE_LOG_FORMAT", "").strip().lower() == "json":
        add_json_handler("usine", "flows")
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.id
    except Exception:  # pragma: no cover — outside any Prefect context
        run_id = None
    with bound_request_id(f"flow-{run_id}" if run_id else None, prefix="flow-") as request_id:
        start = time.perf_counter()
        outcome = "failed"
        try:
            yield request_id
            outcome = "ok"
        finally:
            elapsed = time.perf_counter() - start
            log.info("flow %s : %s en %.3f s", name, outcome, elapsed,
                     extra={"flow": name, "outcome": outcome, "duration_seconds": round(elapsed, 6)})


@flow(name="sweep-deadlines", description="Relances, caducités, délais de paiement, avis d'appel, ordres du jour.")
def sweep_deadlines(at: str | None = None, batch_size: int = SWEEP_BATCH) -> dict:
    """Every sweep once, as of `at` (all of them as of the same instant). The parts run one after
    the other in the flow itself: each commits its own batches, and a part that fails fails the
    run after the previous parts' work is safely committed; the next run finishes the job."""
    with observed("sweep-deadlines"):
        logger = get_run_logger()
        rt = runtime.current()
        clock = FrozenClock(runtime.instant(at, rt.clock))
        total = SweepReport(paris_date(clock.now()))
        for part in PARTS:
            report = sweep_part(part, uow_factory=rt.uow_factory, clock=clock, batch_size=batch_size)
            total.merge(report)
            for error in report.errors:
                logger.warning("%s : %s", part, error)
        summary = total.as_dict()
        logger.info("Balayage au %s : %s", clock.now().isoformat(),
                    {k: v for k, v in summary.items() if v and k not in ("errors", "as_of")})
        return summary


@flow(name="deliver-notifications", description="Envoi des messages en attente par SMTP (reprises, lettres mortes).")
def deliver_notifications(at: str | None = None, batch_size: int = DELIVERY_BATCH, max_batches: int | None = None,
                          lease_seconds: int = int(DELIVERY_LEASE.total_seconds())) -> dict:
    """Send what is due. `lease_seconds`: how long the rows a batch claims stay out of the
    other runs' reach — after a crash, the rows it had claimed and not sent wait that long."""
    if lease_seconds < 1:
        raise ValueError(f"lease_seconds : au moins 1 seconde, reçu {lease_seconds}")
    with observed("deliver-notifications"):
        logger = get_run_logger()
        rt = runtime.current()
        clock = FrozenClock(runtime.instant(at, rt.clock)) if at else rt.clock
        report = deliver(uow_factory=rt.uow_factory, sender=rt.sender, clock=clock, batch_size=batch_size,
                         max_batches=max_batches, lease=timedelta(seconds=lease_seconds))
        if report.stopped:
            logger.warning("Envoi interrompu : %s", report.stopped)
        logger.info("Envoi : %s", report.as_dict())
        return report.as_dict()


@flow(name="daily-digest", description="Récapitulatif quotidien des échéances à 7 jours de chaque chargé de mission.")
def daily_digest(at: str | None = None, horizon_days: int = HORIZON_DAYS, deliver_now: bool = True) -> dict:
    with observed("daily-digest"):
        logger = get_run_logger()
        rt = runtime.current()
        clock = FrozenClock(runtime.instant(at, rt.clock))
        report = queue_daily_digests(uow_factory=rt.uow_factory, clock=clock, horizon_days=horizon_days)
        result = {"digest": report.as_dict()}
        if report.skipped_non_working_day:
            logger.info("%s : jour non ouvré, pas de récapitulatif.", report.for_date)
        if deliver_now and report.queued:
            result["delivery"] = deliver_notifications(at=at)
        logger.info("Récapitulatifs : %s", report.as_dict())
        return result


@flow(name="refresh-dashboard", description="Recalcul des chiffres du tableau de bord des programmes.")
def refresh_dashboard(at: str | None = None) -> dict:
    """Count every programme's dashboard figures and store them (`services.dashboard`): the page
    reads what this run stored, stamped with its instant."""
    with observed("refresh-dashboard"):
        logger = get_run_logger()
        rt = runtime.current()
        clock = FrozenClock(runtime.instant(at, rt.clock)) if at else rt.clock
        report = refresh_dashboard_figures(uow_factory=rt.uow_factory, clock=clock)
        logger.info("Tableau de bord recalculé : %s", report.as_dict())
        return report.as_dict()
