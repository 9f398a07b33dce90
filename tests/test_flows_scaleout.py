"""Scale-out on Prefect's own engine: a real `prefect server` on PostgreSQL, the process work pool,
the deployments of prefect.yaml (`prefect deploy --all`), real `prefect worker` processes, and the
sweep and delivery deployments run concurrently over 100,000 dossiers in PostgreSQL with a real
SMTP server (aiosmtpd).

Two campaigns over two copies of the same 100,000 dossiers (built once by the sweep bench's
builder, copied by PostgreSQL as a template):

1. one worker: the sweep as of Wednesday 16 June 2021, 6:00, and delivery runs started every few
   seconds beside it (a frequent schedule would do the same), until 400 letters are in — the
   one-worker figures;
2. two workers: the same, until every letter is sent; after 1,200 letters the SMTP server holds
   its answer to the next one, the worker running the delivery is killed (SIGKILL, with its
   flow-run process: a machine dying), and the work is finished by the other worker.

What Prefect does with the killed worker's run: by itself, nothing — the run stays Running and
keeps the deployment's concurrency slot, so the next runs are cancelled by the limit. The flow
runs send heartbeats (PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30), and the automation of
`workflows.deployments.crash_detection_automation` marks a run without heartbeat Crashed; that
frees the slot and the next delivery run, on the surviving worker, sends the rest (the killed
run's claimed rows once their lease — here 20 s — has passed). No retry: a flow's `retries` live
in the process that was killed.

Checked: every due letter reached the SMTP server exactly once (Message-IDs counted there), no
event twice, the sweep's outcome identical in both campaigns, the deployments' concurrency limit
as read from the server's API during the run (never more than one run of a deployment at a time),
and the killed run marked Crashed. Figures are printed in the terminal summary (docs/deploy.md).

PostgreSQL only: the Prefect server of a scale-out needs PostgreSQL (its SQLite database does
not take several workers), so on the SQLite pass this test is skipped — `make test` runs the
PostgreSQL pass too. About 4–8 minutes depending on the machine's load."""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bench.sweep import SWEEP_AT, make_rows, write_rows
from db import models as m
from db.engine import make_engine
from notifications.email import make_message_id
from services.audit.verify import verify_dossier
from tests.conftest import POSTGRES_URL
from tests.scaleout_support import (
    TERMINAL,
    CountingSink,
    PrefectApi,
    Process,
    ancestors,
)
from tests.smtp_sink import FROM, SmtpSink, free_port
from workflows.deployments import (
    POOL_DEPLOYMENT_NAME,
    WORK_POOL,
    crash_detection_automation,
)

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.xdist_group("prefect-scaleout"),
    pytest.mark.skipif(not POSTGRES_URL, reason="the scale-out's Prefect server runs on PostgreSQL: "
                                               "PostgreSQL pass only (USINE_TEST_POSTGRES_URL)"),
]

ROOT = Path(__file__).resolve().parent.parent
DOSSIERS = 100_000
SWEEP = f"sweep-deadlines/{POOL_DEPLOYMENT_NAME}"
DELIVER = f"deliver-notifications/{POOL_DEPLOYMENT_NAME}"
ONE_WORKER_LETTERS = 400
KILL_AFTER_LETTERS = 1_200
LEASE_SECONDS = 20
CRASH_AFTER_SECONDS = 45      # heartbeats every 30 s
CAMPAIGN_TIMEOUT = 900        # a loaded 2-core machine sends ~10 letters/s, a quiet one ~25
BUILD_TIMEOUT = 900
END_OF_CAMPAIGN = "fin de la campagne"
BIN = Path(sys.executable).parent


def prefect_cli() -> list[str]:
    found = BIN / "prefect"
    return [str(found)] if found.exists() else [sys.executable, "-m", "prefect"]


def database_url(name: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


def admin(sql: str) -> None:
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def wait_for(what: str, check, timeout: float, every: float = 1.0, on_fail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{on_fail()}")


def run_cli(argv: list[str], env: dict, cwd: Path, timeout: float) -> str:
    import subprocess

    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(argv)} → {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


class Campaign:
    """One campaign: its own copy of the dossiers, its own SMTP server, its runs tagged."""

    def __init__(self, label: str, url: str, api: PrefectApi, deployments: dict) -> None:
        self.label, self.url, self.api, self.deployments = label, url, api, deployments
        self.tag = f"campaign-{label}-{os.getpid()}"
        self.sink = SmtpSink(CountingSink())
        self.env = {"USINE_DATABASE_URL": url, "USINE_SMTP_HOST": "127.0.0.1", "USINE_SMTP_PORT": str(self.sink.port),
                    "USINE_SMTP_FROM": FROM}
        engine = make_engine(url)
        with engine.connect() as conn:
            self.first_new_notification = conn.scalar(select(func.max(m.Notification.id))) + 1
            self.first_new_event = conn.scalar(select(func.max(m.Event.id))) + 1
        engine.dispose()
        self.max_running = Counter()     # deployment name → most runs seen Running at once
        self.max_active_slots = Counter()
        self.limits: dict[str, int] = {}
        self.kill: dict | None = None

    @property
    def handler(self) -> CountingSink:
        return self.sink.handler

    def start(self, name: str, **parameters) -> dict:
        return self.api.run_deployment(self.deployments[name]["id"], parameters, self.env, [self.tag])

    def queued_left(self) -> int:
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.scalar(select(func.count()).select_from(m.Notification)
                                   .where(m.Notification.id >= self.first_new_notification,
                                          m.Notification.status == "queued"))
        finally:
            engine.dispose()

    def observe(self) -> list[dict]:
        """The campaign's runs, and the concurrency as the server reports it right now."""
        runs = self.api.flow_runs(self.tag)
        for name, deployment in self.deployments.items():
            running = sum(1 for r in runs if r["deployment_id"] == deployment["id"] and r["state_type"] == "RUNNING")
            self.max_running[name] = max(self.max_running[name], running)
            limit = self.api.get(f"/deployments/{deployment['id']}")["global_concurrency_limit"]
            self.limits[name] = limit["limit"]
            self.max_active_slots[name] = max(self.max_active_slots[name], limit["active_slots"])
        return runs

    def drive(self, *, until_letters: int | None, workers: dict[str, Process], kill_after: int | None = None,
              delivery_parameters: dict | None = None) -> list[dict]:
        """The sweep, and delivery runs started every 3 s beside it, until the outbox is empty (or
        `until_letters` are in); returns the campaign's runs once all of them are over."""
        if kill_after is not None:
            self.handler.hold_after = kill_after
        self.started = time.monotonic()
        sweep = self.start(SWEEP, at=SWEEP_AT.isoformat())
        deliver_id = self.deployments[DELIVER]["id"]
        last_start = 0.0
        deadline = time.monotonic() + CAMPAIGN_TIMEOUT
        while True:
            assert time.monotonic() < deadline, f"campaign {self.label} not over in {CAMPAIGN_TIMEOUT} s\n" + \
                "\n".join(f"--- {n}\n{w.tail()}" for n, w in workers.items())
            runs = self.observe()
            by_id = {r["id"]: r for r in runs}
            sweep_state = by_id[sweep["id"]]["state_type"]
            assert sweep_state not in ("FAILED", "CRASHED", "CANCELLED"), by_id[sweep["id"]]["state"]
            waiting = [r for r in runs if r["deployment_id"] == deliver_id and r["state_type"] in ("SCHEDULED", "PENDING")]
            received = len(self.handler.received)
            enough = (until_letters is not None and received >= until_letters) or \
                (sweep_state == "COMPLETED" and self.queued_left() == 0)
            if enough:
                break
            if self.kill is None and kill_after is not None and self.handler.holding.is_set() \
                    and sweep_state == "COMPLETED":
                self.kill = self.kill_delivery_worker(runs, workers)
            if not waiting and time.monotonic() - last_start >= 3 and \
                    (until_letters is None or not any(r["deployment_id"] == deliver_id and r["state_type"] == "RUNNING"
                                                      for r in runs)):
                self.start(DELIVER, lease_seconds=LEASE_SECONDS, **(delivery_parameters or {}))
                last_start = time.monotonic()
            time.sleep(1)
        self.finished = time.monotonic()
        wait_for(f"campaign {self.label}: every run over",
                 lambda: all(r["state_type"] in TERMINAL or r["state_type"] == "SCHEDULED" for r in self.observe()),
                 timeout=180, every=1)
        for run in self.api.flow_runs(self.tag):  # what never started is not needed any more
            if run["state_type"] == "SCHEDULED":
                self.api.post(f"/flow_runs/{run['id']}/set_state",
                              {"state": {"type": "CANCELLED", "message": END_OF_CAMPAIGN}, "force": True})
        return self.api.flow_runs(self.tag)

    def kill_delivery_worker(self, runs: list[dict], workers: dict[str, Process]) -> dict:
        deliver_id = self.deployments[DELIVER]["id"]
        [running] = [r for r in runs if r["deployment_id"] == deliver_id and r["state_type"] == "RUNNING"]
        flow_pid = int(str(running["infrastructure_pid"]).rsplit(":", 1)[-1])
        lineage = set(ancestors(flow_pid))
        [(name, worker)] = [(n, w) for n, w in workers.items() if w.pid in lineage]
        letters = len(self.handler.received)
        killed = worker.kill()
        assert flow_pid in killed
        self.handler.release()
        return {"worker": name, "run": running["id"], "at": time.monotonic(), "letters_before": letters}

    def stop(self) -> None:
        self.handler.release()
        self.sink.stop()


def duration(run: dict) -> float:
    return float(run["total_run_time"])


def rate(arrivals: list[float], gap: float = 5.0) -> float:
    """Letters a second while sending: the arrivals cut where more than `gap` seconds pass between
    two (a run that ended, the next one starting), each stretch's letters over its duration."""
    if len(arrivals) < 2:
        return 0.0
    letters, seconds, start = 0, 0.0, arrivals[0]
    for before, after in zip(arrivals, arrivals[1:]):
        if after - before > gap:
            seconds += before - start
            start = after
        else:
            letters += 1
    seconds += arrivals[-1] - start
    return letters / seconds if seconds else 0.0


def new_rows(url: str, first_event: int, first_notification: int) -> dict:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            events = conn.execute(select(m.Event.dossier_id, m.Event.seq, m.Event.command, m.Event.data)
                                  .where(m.Event.id >= first_event)).all()
            notes = conn.execute(select(m.Notification.dedupe_key, m.Notification.status)
                                 .where(m.Notification.id >= first_notification)).all()
            duplicated_seq = conn.scalar(text(
                "SELECT count(*) FROM (SELECT dossier_id, seq FROM events GROUP BY dossier_id, seq "
                "HAVING count(*) > 1) d"))
            sample = conn.scalars(select(m.Event.dossier_id).where(m.Event.id >= first_event)
                                  .order_by(m.Event.id).limit(15)).all()
        with engine.connect() as conn:
            from sqlalchemy.orm import Session

            with Session(bind=conn) as session:
                verified = all(verify_dossier(session, i).ok for i in set(sample))
        return {"events": events, "notifications": notes, "duplicated_seq": duplicated_seq, "verified": verified}
    finally:
        engine.dispose()


def test_two_prefect_workers_share_the_sweep_and_the_delivery_of_100000_dossiers_and_one_killed_loses_and_doubles_nothing(
        tmp_path, record_property):
    pid = os.getpid()
    names = {k: f"usine_scaleout_{k}_{pid}" for k in ("prefect", "one", "two")}
    processes: list[Process] = []
    campaigns: list[Campaign] = []
    api = None
    figures: dict = {}
    try:
        for name in names.values():
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{names["prefect"]}"')
        admin(f'CREATE DATABASE "{names["one"]}"')

        # -- the Prefect server on PostgreSQL, started while the dossiers are being built -------------
        port = free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "USINE_"))}
        base_env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                         "PREFECT_API_URL": api_url, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
                         "PYTHONPATH": str(ROOT)})
        server_env = {**base_env, "PREFECT_HOME": str(tmp_path / "server-home"),
                      "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
                      "PREFECT_API_DATABASE_CONNECTION_URL":
                          "postgresql+asyncpg://" + database_url(names["prefect"]).split("://", 1)[1],
                      "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
        server = Process("server", [*prefect_cli(), "server", "start"],
                         server_env, tmp_path / "server.log")
        processes.append(server)

        # The dossiers are built in a thread while the server starts and the deployments are made
        # (subprocesses: the other core); joined before the first campaign.
        build: dict = {}

        def build_dossiers() -> None:
            try:
                t0 = time.monotonic()
                rows = make_rows(DOSSIERS)
                build["shape"] = write_rows(database_url(names["one"]), rows)
                del rows
                admin(f'CREATE DATABASE "{names["two"]}" TEMPLATE "{names["one"]}" STRATEGY FILE_COPY')
                build["seconds"] = time.monotonic() - t0
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                build["error"] = exc

        builder = threading.Thread(target=build_dossiers, name="build-dossiers", daemon=True)
        builder.start()

        api = PrefectApi(api_url)
        wait_for("the Prefect server answers", api.healthy, timeout=240, every=2, on_fail=server.tail)
        cli_env = {**base_env, "PREFECT_HOME": str(tmp_path / "cli-home"), "USINE_HOME": str(ROOT)}
        run_cli([*prefect_cli(), "work-pool", "create", WORK_POOL, "--type", "process"], cli_env, ROOT, 180)
        run_cli([*prefect_cli(), "--no-prompt", "deploy", "--all"], cli_env, ROOT, 300)
        deployments = {name: api.deployment(name) for name in (SWEEP, DELIVER)}
        for deployment in api.post("/deployments/filter", {}):  # the test starts its runs itself
            for schedule in deployment["schedules"]:
                api.patch(f"/deployments/{deployment['id']}/schedules/{schedule['id']}", {"active": False})
        api.post("/automations/", crash_detection_automation(CRASH_AFTER_SECONDS).model_dump(mode="json", exclude={"id"}))

        def worker(name: str) -> Process:
            env = {**base_env, "PREFECT_HOME": str(tmp_path / f"{name}-home"), "USINE_HOME": str(ROOT),
                   "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30", "PREFECT_WORKER_QUERY_SECONDS": "2",
                   "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
            process = Process(name, [*prefect_cli(), "worker", "start", "--pool", WORK_POOL, "--name", name],
                              env, tmp_path / f"{name}.log", cwd=ROOT)
            processes.append(process)
            wait_for(f"{name} online", lambda: name in api.online_workers(WORK_POOL), timeout=180, every=2,
                     on_fail=process.tail)
            return process

        # -- campaign 1: one worker ----------------------------------------------------------------------
        workers = {"worker-1": worker("worker-1")}
        builder.join(timeout=BUILD_TIMEOUT)
        assert not builder.is_alive(), f"100,000 dossiers not built in {BUILD_TIMEOUT} s"
        if "error" in build:
            raise build["error"]
        figures["build_s"], figures["shape"] = build["seconds"], build["shape"]
        one = Campaign("one", database_url(names["one"]), api, deployments)
        campaigns.append(one)
        one_runs = one.drive(until_letters=ONE_WORKER_LETTERS, workers=workers,
                             delivery_parameters={"max_batches": ONE_WORKER_LETTERS // 50})
        one_sweep = next(r for r in one_runs if r["deployment_id"] == deployments[SWEEP]["id"])
        assert one_sweep["state_type"] == "COMPLETED"

        # -- campaign 2: two workers, one of them killed mid-delivery ---------------------------------------
        workers["worker-2"] = worker("worker-2")
        two = Campaign("two", database_url(names["two"]), api, deployments)
        campaigns.append(two)
        two_runs = two.drive(until_letters=None, workers=workers, kill_after=KILL_AFTER_LETTERS)
        two_sweep = next(r for r in two_runs if r["deployment_id"] == deployments[SWEEP]["id"])
        assert two_sweep["state_type"] == "COMPLETED"

        # The worker was killed mid-run, Prefect's automation marked its run Crashed, the other finished.
        assert two.kill is not None, "the delivery never reached the hold: no worker was killed"
        # -- figures --------------------------------------------------------------------------------------
        cancelled = [r for r in two_runs if r["deployment_id"] == deployments[DELIVER]["id"]
                     and r["state_type"] == "CANCELLED" and r["state"].get("message") != END_OF_CAMPAIGN]
        pre_kill = [t for t in two.handler.arrivals if t < two.kill["at"]]
        post_kill = [t for t in two.handler.arrivals if t > two.kill["at"]]
        figures.update({
            "letters_due": len(two.handler.received),
            "sweep_one_worker_s": duration(one_sweep), "sweep_two_workers_s": duration(two_sweep),
            "letters_per_s_one_worker": rate(one.handler.arrivals),
            "letters_per_s_two_workers": rate(pre_kill),
            "letters_per_s_after_kill": rate(post_kill),
            "first_letter_after_kill_s": post_kill[0] - two.kill["at"] if post_kill else None,
            "campaign_two_s": two.finished - two.started,
            "killed_worker": two.kill["worker"], "letters_before_kill": two.kill["letters_before"],
            "cancelled_by_limit": len(cancelled),
        })
        killed = api.flow_run(two.kill["run"])
        assert killed["state_type"] == "CRASHED", killed["state"]
        survivor = next(n for n in workers if n != two.kill["worker"])
        assert not workers[two.kill["worker"]].alive() and workers[survivor].alive()
        crashed_at = killed["state"]["timestamp"]
        after_kill = [r for r in two_runs if r["deployment_id"] == deployments[DELIVER]["id"]
                      and r["state_type"] == "COMPLETED" and r["start_time"] and r["start_time"] > crashed_at]
        assert after_kill, "no delivery run completed after the crash"

        # Every due letter reached the SMTP server exactly once.
        rows_two = new_rows(two.url, two.first_new_event, two.first_new_notification)
        domain = FROM.rsplit("@", 1)[1].rstrip(">")
        due = {make_message_id(key, domain) for key, _status in rows_two["notifications"]}
        ids = Counter(r.message_id for r in two.handler.received)
        assert [i for i, n in ids.items() if n > 1] == []
        assert set(ids) == due and len(due) == len(rows_two["notifications"])
        assert {status for _key, status in rows_two["notifications"]} == {"sent"}

        # No event twice, and the sweep did the same with two workers and a crash as with one.
        rows_one = new_rows(one.url, one.first_new_event, one.first_new_notification)
        assert rows_two["duplicated_seq"] == 0
        reminders = Counter((e.dossier_id, e.data.get("request_id"), e.data.get("after_days"))
                            for e in rows_two["events"] if e.command == "remind")
        assert [k for k, n in reminders.items() if n > 1] == []
        per_dossier = Counter((e.dossier_id, e.command) for e in rows_two["events"] if e.command != "remind")
        assert [k for k, n in per_dossier.items() if n > 1] == []
        assert Counter(e.command for e in rows_two["events"]) == Counter(e.command for e in rows_one["events"])
        assert {k for k, _ in rows_two["notifications"]} == {k for k, _ in rows_one["notifications"]}
        assert rows_two["verified"]

        # The concurrency limits of prefect.yaml, as the server reported them during the runs.
        for campaign in (one, two):
            for name in (SWEEP, DELIVER):
                assert campaign.limits[name] == 1
                assert campaign.max_running[name] <= campaign.limits[name]
                assert campaign.max_active_slots[name] <= campaign.limits[name]
        # The test cancels no run but the never-started ones at the end: these were refused by the limit.
        assert cancelled, "no delivery run was refused by the deployment's limit"
        cancelled = [r for r in two_runs if r["deployment_id"] == deployments[DELIVER]["id"]
                     and r["state_type"] == "CANCELLED" and r["start_time"] is None]

    finally:
        for campaign in campaigns:
            campaign.stop()
        for process in reversed(processes):
            process.stop()
        if api is not None:
            api.close()
        for name in names.values():
            try:
                admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        if figures:
            report = figures_text(figures)
            (tmp_path / "figures.txt").write_text(report, encoding="utf-8")
            record_property("usine_figures", report)


def figures_text(f: dict) -> str:
    if "shape" not in f:
        return "scale-out on Prefect: stopped before the dossiers were built"
    lines = [f"scale-out on Prefect ({DOSSIERS:,} dossiers, PostgreSQL; build {f['build_s']:.0f} s, "
             f"{f['shape']['events']:,} events, {f['shape']['notifications']:,} outbox rows)"]
    if "letters_due" in f:
        lines += [
            f"  sweep as of {SWEEP_AT.isoformat()}: {f['sweep_one_worker_s']:.1f} s with one worker, "
            f"{f['sweep_two_workers_s']:.1f} s with two (flow run time, delivery running beside it)",
            f"  delivery: {f['letters_per_s_one_worker']:.1f} letters/s with one worker, "
            f"{f['letters_per_s_two_workers']:.1f} with two (before the kill), "
            f"{f['letters_per_s_after_kill']:.1f} after it (one left)",
            f"  {f['letters_due']:,} letters received; {f['killed_worker']} killed after "
            f"{f['letters_before_kill']:,}; first letter after the kill {f['first_letter_after_kill_s'] or 0:.0f} s later "
            f"(heartbeat 30 s, crash after {CRASH_AFTER_SECONDS} s, lease {LEASE_SECONDS} s); "
            f"{f['cancelled_by_limit']} delivery runs cancelled by the limit; campaign {f['campaign_two_s']:.0f} s",
        ]
    return "\n".join(lines)
