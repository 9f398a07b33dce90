"""Prometheus metrics (prometheus-client), scraped at the API's `GET /metrics`.

Counted where they happen: HTTP requests and their latency by the API's middleware
(`api.observability`), commands at the API's command routes (`api.routes_commands`, one
wrapper around every command), idempotency conflicts where the API answers them
(`api.idempotency`), sweeps around each sweep part (`services.sweep.sweep_part`, whichever
process runs it: a flow run, `usine sweep`, the scenario runner). Computed at scrape time by a
collector (one cheap query): the outbox's depth, its oldest queued message's age, and whether
the database answered at all.

**Several processes.** With `PROMETHEUS_MULTIPROC_DIR` set, prometheus-client keeps each
process's values in memory-mapped files in that directory and `GET /metrics` adds them up
(`MultiProcessCollector`): what `usine api --workers N` (N > 1) sets up for its workers
(`api.server`), and what `usine serve` sets for the API and the flows, so that the flow runs'
sweep durations show at the API's /metrics. Without it (one worker), the process's own
registry. Every metric here has labels, so that a process creates files only for the metrics
it actually moves (a flow run: the sweep's; never the HTTP ones)."""
from __future__ import annotations

import functools
import logging
import os
import time
from datetime import datetime
from typing import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from services import telemetry

# No `_created` series beside each counter and histogram: noise for dashboards and alerts.
disable_created_metrics()

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter("usine_http_requests_total", "Requêtes HTTP servies, par méthode, route (modèle) et statut.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("usine_http_request_duration_seconds",
                          "Durée des requêtes HTTP (de la réception au dernier octet envoyé), par méthode et route.",
                          ["method", "route"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
COMMANDS = Counter("usine_commands_total",
                   "Commandes reçues par l'API, par nom et issue (ok, refused, conflict, replayed, error) ; "
                   "rule : l'identifiant de la règle d'un refus ou d'un conflit (vide pour ok).",
                   ["command", "outcome", "rule"])
IDEMPOTENCY_CONFLICTS = Counter("usine_idempotency_conflicts_total",
                                "Requêtes refusées par leur Idempotency-Key (idempotency_key_reused : la clé a servi "
                                "pour une autre requête ; idempotency_in_progress : la même requête est en cours).",
                                ["rule"])
SWEEP_DURATION = Histogram("usine_sweep_duration_seconds", "Durée d'un balayage planifié, par partie.", ["part"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0))
SWEEP_RUNS = Counter("usine_sweep_runs_total", "Balayages exécutés, par partie et issue (ok, failed).",
                     ["part", "outcome"])
SWEEP_LAST_SUCCESS = Gauge("usine_sweep_last_success_timestamp_seconds",
                           "Instant (horloge système, secondes Unix) de la dernière réussite de chaque partie du "
                           "balayage.", ["part"], multiprocess_mode="max")

log = logging.getLogger("usine.sweep")


# `Metric.labels(...)` checks and converts its values and takes a lock at every call (a few
# microseconds, three times a request): each series' child is looked up once, then kept here
# (children are never removed, so a kept one is the registry's own).
_REQUEST_SERIES: dict[tuple, tuple] = {}
_COMMAND_SERIES: dict[tuple, object] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request: its counter and its latency histogram."""
    key = (method, route, status)
    series = _REQUEST_SERIES.get(key)
    if series is None:
        series = _REQUEST_SERIES[key] = (HTTP_REQUESTS.labels(method, route, str(status)),
                                         HTTP_DURATION.labels(method, route))
    series[0].inc()
    series[1].observe(seconds)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))


# -- commands --------------------------------------------------------------------------------------

# Another writer got there first (a stale If-Match, a concurrent update, the same idempotent
# request still running): retrying is the answer. A 409 `not_allowed` (the dossier's state
# forbids the command) is a refusal, like a rule's 422.
CONFLICT_RULES = frozenset({"conflict", "idempotency_in_progress"})

def command_outcome(status: int, rule: str | None, replayed: bool) -> tuple[str, str]:
    """(outcome, rule) of a command's answer."""
    if replayed:
        return "replayed", ""
    if status < 400:
        return "ok", ""
    if rule in CONFLICT_RULES or (status == 409 and not rule):
        return "conflict", rule or "conflict"
    if status >= 500:
        return "error", rule or ""
    return "refused", rule or ""


def count_command(name: str, status: int, rule: str | None = None, replayed: bool = False) -> None:
    key = (name, status, rule, replayed)
    child = _COMMAND_SERIES.get(key)
    if child is None:
        child = _COMMAND_SERIES[key] = COMMANDS.labels(name, *command_outcome(status, rule, replayed))
    child.inc()


# -- sweeps ----------------------------------------------------------------------------------------

def observed_sweep(run: Callable) -> Callable:
    """Wrap `sweep_part(part, …)`: its duration, its outcome, its last success, one log line;
    and a request id for the events it writes (the flow run's when a flow bound one, else a new
    `sweep-…`)."""

    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        part = args[0] if args else kwargs.get("part", "?")
        with telemetry.bound_request_id(prefix="sweep-", keep=True):
            start = time.perf_counter()
            try:
                report = run(*args, **kwargs)
            except BaseException:
                elapsed = time.perf_counter() - start
                SWEEP_DURATION.labels(part).observe(elapsed)
                SWEEP_RUNS.labels(part, "failed").inc()
                log.exception("balayage %s en échec après %.3f s", part, elapsed,
                              extra={"part": part, "duration_seconds": round(elapsed, 6), "outcome": "failed"})
                raise
            elapsed = time.perf_counter() - start
            SWEEP_DURATION.labels(part).observe(elapsed)
            SWEEP_RUNS.labels(part, "ok").inc()
            SWEEP_LAST_SUCCESS.labels(part).set(time.time())
            counts = {k: v for k, v in report.as_dict().items() if k not in ("as_of", "errors")}
            log.info("balayage %s : %.3f s", part, elapsed,
                     extra={"part": part, "duration_seconds": round(elapsed, 6), "outcome": "ok",
                            "as_of": report.as_of.isoformat(), "errors": len(report.errors), **counts})
            return report

    return wrapper


# -- computed at scrape time -----------------------------------------------------------------------

class DatabaseCollector:
    """The outbox's depth and age, read in one statement at each scrape (the notifications'
    (status, next_attempt_at) index serves the filter; the queued and dead rows are few)."""

    def __init__(self, uow_factory, clock):
        self.uow_factory, self.clock = uow_factory, clock

    def describe(self):
        return []

    def _query(self):
        from db import models as m

        n = m.Notification
        return (select(n.status, func.count(), func.min(n.created_at))
                .where(n.status.in_(("queued", "dead"))).group_by(n.status))

    def collect(self):
        up = GaugeMetricFamily("usine_database_up", "1 si la base a répondu à la requête des métriques, 0 sinon.")
        depth = GaugeMetricFamily("usine_outbox_messages", "Messages de la file d'envoi, par statut (queued : à "
                                  "envoyer ; dead : abandonnés après leurs reprises).", labels=["status"])
        age = GaugeMetricFamily("usine_outbox_oldest_queued_age_seconds",
                                "Âge (horloge du service) du plus ancien message à envoyer ; 0 quand la file est vide.")
        try:
            with self.uow_factory() as uow:
                rows = uow.session.execute(self._query()).all()
        except Exception:  # the database is down: say so, and nothing else
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        found = {status: (count, oldest) for status, count, oldest in rows}
        for status in ("queued", "dead"):
            depth.add_metric([status], found.get(status, (0, None))[0])
        oldest: datetime | None = found.get("queued", (0, None))[1]
        age.add_metric([], max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0)
        yield up
        yield depth
        yield age


def render(*collectors) -> bytes:
    """The exposition text: this process's metrics (or every process's, in multiprocess mode),
    then those the collectors compute now."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    out = generate_latest(registry)
    if collectors:
        extra = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            extra.register(collector)
        out += generate_latest(extra)
    return out


def prepare_multiprocess_dir(path: str) -> str:
    """An empty directory for the processes' files (values of a previous run would be added to
    this one's)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    return path


def process_dead(pid: int) -> None:
    """A worker ended: forget its live gauges (its counters stay: a counter never goes back)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)
