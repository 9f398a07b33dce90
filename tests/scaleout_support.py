"""What the scale-out test drives: processes it starts (and always ends), the Prefect server's
REST API, an SMTP sink that counts Message-IDs and can hold a message to let a worker be killed
at a known point."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.smtp_sink import Sink

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (the flow-run processes a worker spawns run in sessions of their
    own: a signal to the worker's process group misses them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        out.append(pid)
    return out


class Process:
    """A command in its own session, its output in a log file; `stop` ends it and everything
    it started (SIGTERM, then SIGKILL), `kill` is a machine dying (SIGKILL, no goodbye)."""

    def __init__(self, name: str, argv: list[str], env: dict, log: Path, cwd: Path | None = None) -> None:
        self.name, self.log = name, log
        self._log = log.open("w")
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _signal_all(self, sig: int) -> None:
        for pid in [self.pid, *descendants(self.pid)]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> list[int]:
        """SIGKILL to the process and every descendant at once; returns the pids killed."""
        pids = [self.pid, *descendants(self.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=30)
        return pids

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            below = descendants(self.pid)
            self._signal_all(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            for pid in [self.pid, *below, *descendants(self.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class CountingSink(Sink):
    """The tests' aiosmtpd handler, with the arrival time of each message, and a hold: once
    `hold_after` messages are in, the next DATA is neither accepted nor refused until
    `release()` — the sender waits for its answer, and can be killed there. A held message is
    then answered 451 and not kept (its sender is gone anyway)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    async def handle_DATA(self, server, session, envelope):
        if self.hold_after is not None and not self._released.is_set() and len(self.received) >= self.hold_after:
            self.holding.set()
            deadline = time.monotonic() + 600
            while not self._released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return "451 4.3.0 Try again later"
        answer = await super().handle_DATA(server, session, envelope)
        if answer.startswith("250"):
            self.arrivals.append(time.monotonic())
        return answer


class PrefectApi:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def get(self, path: str):
        response = self.client.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict):
        response = self.client.post(path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def patch(self, path: str, body: dict) -> None:
        self.client.patch(path, json=body).raise_for_status()

    def healthy(self) -> bool:
        try:
            return self.client.get("/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def deployment(self, name: str) -> dict:
        return self.get(f"/deployments/name/{name}")

    def run_deployment(self, deployment_id: str, parameters: dict, env: dict, tags: list[str]) -> dict:
        return self.post(f"/deployments/{deployment_id}/create_flow_run",
                         {"parameters": parameters, "job_variables": {"env": env}, "tags": tags})

    def flow_runs(self, tag: str) -> list[dict]:
        out: list[dict] = []
        while True:  # the server answers at most 200 at a time
            page = self.post("/flow_runs/filter", {"flow_runs": {"tags": {"all_": [tag]}}, "limit": 200,
                                                   "offset": len(out), "sort": "ID_DESC"})
            out += page
            if len(page) < 200:  # runs created meanwhile shift the pages: each run once
                return list({run["id"]: run for run in out}.values())

    def flow_run(self, run_id: str) -> dict:
        return self.get(f"/flow_runs/{run_id}")

    def online_workers(self, pool: str) -> set[str]:
        return {w["name"] for w in self.post(f"/work_pools/{pool}/workers/filter", {}) if w["status"] == "ONLINE"}

    def close(self) -> None:
        self.client.close()
