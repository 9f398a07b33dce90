"""Load run of the REST API: N officers advancing dossiers concurrently, over loopback.

    .venv/bin/python -m bench.api_load --dossiers 400 --officers 8              # SQLite file
    .venv/bin/python -m bench.api_load --postgres postgresql+psycopg://postgres@127.0.0.1:5432/usine_bench

1. prepares a database (a SQLite file in a temporary folder, or the PostgreSQL database named in
   the URL, dropped and re-created: use a dedicated one), its schema, the officers' accounts
   and N submitted Occitanie dossiers (through the services, with their candidacy, diagnostic
   and action-plan pieces);
2. starts the API in a subprocess on 127.0.0.1 as `usine api` does (`python -m api.server`: uvicorn,
   one SO_REUSEPORT socket a worker; a free port; `--workers`, default 1 on SQLite and 1 a core
   on PostgreSQL), the service clock set in 2021 so that the programme
   is open;
3. starts a second process, the driver (asyncio; `--client lean`, a minimal HTTP/1.1 client, by
   default, or `--client httpx`), in which each officer signs in, then
   sends commands with `If-Match`: take_for_review → request_documents → declare_eligible →
   accept_diagnostic on the dossiers of its share, and now and then on any dossier — two
   officers on one dossier is the expected 409 (stale version or state);
4. prints commands/s, p50/p99 latency, the expected 409s apart from any other error, and the CPU
   each command cost the API's processes, PostgreSQL's and the driver (from /proc, over the
   timed phase).

`--server gunicorn` serves the same app with gunicorn `--reuse-port` over uvicorn workers set up as
api.server's (`bench.gunicorn_worker`; gunicorn is the `bench` extra); `--compare` runs both,
`--rounds` times each, alternately on one database, and prints them side by side
(docs/performance.md, "Supervisor vs gunicorn").

Bounded: at most 4 commands per dossier, `--max-seconds` of driving, loopback only."""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

CLOCK_START = "2021-02-01T10:00:00+01:00"
REGION = "Occitanie"
PASSWORD = "banc-de-charge-2021"
COMPANY = {"siren": "732829320", "name": "Atelier Garonne SAS", "employees": 45, "equity": "200000.00",
           "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
           "activity": "industrial"}
NEXT = {"submitted": "take_for_review", "eligibility_review": "request_documents", "requested": "declare_eligible",
        "diagnostic": "accept_diagnostic"}
BODIES = {"take_for_review": None, "request_documents": {"kinds": ["rib"]},
          "declare_eligible": {"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": "1100.00"}},
          "accept_diagnostic": None}


# -- orchestration ------------------------------------------------------------------------------

def prepare_database(postgres: str | None, folder: Path) -> str:
    from sqlalchemy import text

    from db.engine import create_schema, make_engine

    if postgres:
        base, name = postgres.rsplit("/", 1)
        if name in ("test", "postgres", "root", "template0", "template1"):
            raise SystemExit(f"--postgres : base « {name} » refusée, donnez une base dédiée (ex. usine_bench).")
        admin = make_engine(f"{base}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                _check_only_bench_data(postgres, name)
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = postgres
    else:
        url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    return url


def _check_only_bench_data(url: str, name: str) -> None:
    """The bench drops the database it is given: refuse one that holds anything but an earlier
    bench's data (tables of another application, or accounts the bench did not create)."""
    from sqlalchemy import inspect, text

    from db.engine import make_engine

    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        foreign = None
        if "users" in tables:
            with engine.connect() as conn:
                foreign = conn.scalar(text("SELECT username FROM users WHERE username NOT LIKE 'bench.%' LIMIT 1"))
    finally:
        engine.dispose()
    if tables and ("users" not in tables or foreign is not None):
        raise SystemExit(f"--postgres : la base « {name} » contient des données qui ne viennent pas du banc "
                         f"({'compte ' + repr(foreign) if foreign else 'tables ' + ', '.join(sorted(tables)[:5])}) ; "
                         f"elle serait supprimée : donnez une base dédiée (ex. usine_bench).")


def seed(url: str, folder: Path, dossiers: int, officers: int) -> list[int]:
    from argon2 import PasswordHasher

    from services import commands, users
    from services.clock import FrozenClock
    from services.uow import unit_of_work_factory

    # Sign-in is not what is measured: cheaper argon2 parameters for the bench accounts only.
    users.PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    factory = unit_of_work_factory(url, storage_dir=str(folder / "documents"))
    clock = FrozenClock(datetime.fromisoformat(CLOCK_START))
    for i in range(officers):
        with factory() as uow:
            users.create_user(uow=uow, clock=clock, username=f"bench.agent{i}", password=PASSWORD, role="officer",
                              regions=[REGION])
    applicant = commands.Actor("bench.entreprise", "applicant", siren=COMPANY["siren"])
    pieces = ["kbis", "financial_statement", "tax_certificate", "social_certificate", "rib", "de_minimis_attestation",
              "consultant_quote", "diagnostic_report", "action_plan", "phase2_quote"]
    ids = []
    for _ in range(dossiers):
        with factory() as uow:
            ids.append(commands.submit_candidacy(uow=uow, clock=clock, actor=applicant, programme_id="occitanie-prif",
                                                 company=COMPANY, documents=pieces).dossier_id)
        clock.advance(seconds=1)
    factory.engine.dispose()
    return ids


def service_floor(url: str, folder: Path, dossier_ids: list[int]) -> dict:
    """The same four commands called straight through the services, one after the other, in
    this process: what a command costs with no HTTP, no authentication, no concurrency."""
    from services import commands
    from services.clock import FrozenClock
    from services.uow import unit_of_work_factory

    factory = unit_of_work_factory(url, storage_dir=str(folder / "documents"))
    clock = FrozenClock(datetime.fromisoformat(CLOCK_START))
    actor = commands.Actor("bench.floor", "officer", regions=(REGION,))
    calls = [("take_for_review", {}), ("request_documents", {"kinds": ["rib"]}),
             ("declare_eligible", {"consultant": "Cabinet Midi Conseil", "phase1": {"days": 5, "day_rate": "1100.00"}}),
             ("accept_diagnostic", {})]
    started, cpu_started = time.perf_counter(), time.process_time()
    for d in dossier_ids:
        for name, kwargs in calls:
            clock.advance(seconds=1)
            with factory() as uow:
                getattr(commands, name)(uow=uow, clock=clock, actor=actor, dossier_id=d, **kwargs)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    factory.engine.dispose()
    n = 4 * len(dossier_ids)
    return {"commands": n, "commands_per_second": round(n / seconds, 1), "ms_per_command": round(1000 * seconds / n, 2),
            "cpu_ms_per_command": round(1000 * cpu / n, 2)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = ("ours", "gunicorn")


def gunicorn_command(*, port: int, workers: int) -> list[str]:
    """gunicorn over uvicorn workers set up as api.server's (`bench.gunicorn_worker`), on the app
    factory `usine api` serves, `--reuse-port` (gunicorn's one listening socket, shared by its
    workers), keep-alive and graceful stop as uvicorn's defaults and api.server's."""
    from api.server import APP, STOP_TIMEOUT_SECONDS

    return [sys.executable, "-m", "gunicorn", f"{APP}()", "--worker-class", "bench.gunicorn_worker.UsineUvicornWorker",
            "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--reuse-port", "--keep-alive", "5",
            "--graceful-timeout", str(STOP_TIMEOUT_SECONDS), "--log-level", "warning"]


def start_server(url: str, folder: Path, port: int, workers: int, server: str = "ours") -> subprocess.Popen:
    env = {**os.environ, "USINE_DATABASE_URL": url, "USINE_STORAGE_DIR": str(folder / "documents"),
           "USINE_SECRET_KEY": secrets.token_hex(32), "USINE_CLOCK_START": CLOCK_START,
           "USINE_VAR_DIR": str(folder), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    if server == "gunicorn":
        # api.server's supervisor gives its workers one metrics directory (prometheus-client's
        # multiprocess mode); gunicorn's workers get one too, so that both pay the same per request.
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics = Path(tempfile.mkdtemp(prefix="metrics-", dir=folder))
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        cmd = gunicorn_command(port=port, workers=workers)
    else:
        from api.server import api_command

        cmd = api_command(host="127.0.0.1", port=port, workers=workers, log_level="warning", access_log=False)
    return subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parent.parent)


def wait_healthy(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"le serveur s'est arrêté (code {server.returncode})")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("l'API ne répond pas")


def measure(args, url: str, folder: Path, ids: list[int], server_kind: str) -> dict:
    """One timed run: the server started on `ids`' database, the driver in its own process, the server stopped."""
    dossier_file = folder / f"dossiers-{ids[0]}.json"
    dossier_file.write_text(json.dumps(ids))
    port = free_port()
    load_before = os.getloadavg()[0]
    server = start_server(url, folder, port, args.workers, server_kind)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server)
        driver = subprocess.run(
            [sys.executable, "-m", "bench.api_load", "--drive", base, "--dossier-file", str(dossier_file),
             "--officers", str(args.officers), "--max-seconds", str(args.max_seconds),
             "--contention", str(args.contention), "--seed", str(args.seed), "--server-pid", str(server.pid),
             "--client", args.client],
            capture_output=True, text=True, timeout=args.max_seconds + 120,
            cwd=Path(__file__).resolve().parent.parent)
        if driver.returncode != 0:
            raise SystemExit(f"driver failed:\n{driver.stderr}")
        result = json.loads(driver.stdout)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    result.update(server=server_kind, load_average_before=round(load_before, 2))
    return result


def run(args) -> dict:
    """Prepare the database, then one run of `--server`, or with `--compare` `--rounds` runs of
    each server on the same database (each run on dossiers of its own, the order alternating
    from one round to the next so that neither always runs first)."""
    load_before = os.getloadavg()[0]
    plan = [(r, kind) for r in range(args.rounds) for kind in (SERVERS if r % 2 == 0 else SERVERS[::-1])] \
        if args.compare else [(0, args.server)]
    with tempfile.TemporaryDirectory(prefix="usine-bench-") as tmp:
        folder = Path(tmp)
        url = prepare_database(args.postgres, folder)
        t0 = time.perf_counter()
        ids = seed(url, folder, args.dossiers * len(plan) + args.floor_dossiers, args.officers)
        load_seconds = time.perf_counter() - t0
        floor = service_floor(url, folder, ids[args.dossiers * len(plan):]) if args.floor_dossiers else None
        runs = []
        for k, (round_, kind) in enumerate(plan):
            result = measure(args, url, folder, ids[k * args.dossiers:(k + 1) * args.dossiers], kind)
            runs.append({**result, "round": round_ + 1})
        common = dict(database="postgresql" if args.postgres else "sqlite", uvicorn_workers=args.workers,
                      dossiers=args.dossiers, load_seconds=round(load_seconds, 1), service_floor=floor,
                      cpus=os.cpu_count(), load_average_before=round(load_before, 2))
        if not args.compare:
            return {**runs[0], **common}
        return {**common, "runs": runs, "officers": args.officers}


# -- the driver (second process) ------------------------------------------------------------------

def cpu_seconds_by_process(server_pid: int | None) -> dict[int, tuple[str, float]]:
    """CPU time spent so far (user + system, from /proc) by each process of the API (the
    supervisor and its workers: `server_pid` and its descendants) and of the PostgreSQL server,
    with the part it counts for."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        pid = int(entry)
        names[pid] = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick

    def under(pid: int, root: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 1)
        return False

    out: dict[int, tuple[str, float]] = {}
    for pid, seconds in used.items():
        if server_pid and under(pid, server_pid):
            out[pid] = ("api", seconds)
        elif names[pid].startswith("postgres"):
            out[pid] = ("postgresql", seconds)
    return out


def cpu_seconds_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                        driver_seconds: float) -> dict[str, float]:
    """Where the timed phase's CPU went: by part, each process's time since the first reading
    (a process started meanwhile: all of its time). A process that ended meanwhile is left out
    — subtracting its first reading made a negative PostgreSQL share whenever another job's
    backends ended during a run. PostgreSQL's share is every backend of the server, the
    bench's and any other job's on the machine."""
    out = {"api": 0.0, "postgresql": 0.0}
    for pid, (part, seconds) in after.items():
        out[part] += seconds - (before[pid][1] if pid in before else 0.0)
    out["driver"] = driver_seconds
    return out


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def connections_by_worker(server_pid: int | None, port: int) -> list[int]:
    """How many established connections to `port` each API process holds (from /proc), largest
    first: the officers' keep-alive connections stay where they were accepted, so this says
    how the load was spread over the workers (one process holding them all is one GIL)."""
    if not server_pid:
        return []
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                established.add(fields[9])
    counts = []
    for pid in [server_pid, *children_of(server_pid)]:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in established)
        if held or pid != server_pid:
            counts.append(held)
    return sorted(counts, reverse=True)


class LeanResponse:
    """What the driver reads of an answer: the status, the headers, the JSON body."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code, self.headers, self.content = status_code, headers, content

    def json(self):
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.content[:200]!r}")


class LeanClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for the driver: a load generator
    sharing the server's two cores should cost as little as possible, and httpx spends ~2 ms of
    CPU a request here. Same calls as `httpx.AsyncClient` for what the driver uses; it speaks
    real HTTP over TCP, one pooled connection per concurrent request, and checks every answer's
    framing (Content-Length or chunked)."""

    def __init__(self, base_url: str, limits=None, timeout: float = 30):
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> "LeanClient":
        return self

    async def __aexit__(self, *exc) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def get(self, path: str, headers: dict | None = None) -> LeanResponse:
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, json: Any = None, data: dict | None = None,
                   headers: dict | None = None) -> LeanResponse:
        from urllib.parse import urlencode

        if data is not None:
            body, kind = urlencode(data).encode(), "application/x-www-form-urlencoded"
        elif json is not None:
            body, kind = _json_bytes(json), "application/json"
        else:
            body, kind = b"", None
        return await self.request("POST", path, body=body, content_type=kind, headers=headers)

    async def request(self, method: str, path: str, *, body: bytes = b"", content_type: str | None = None,
                      headers: dict | None = None) -> LeanResponse:
        reader, writer = self._idle.pop() if self._idle else await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        response = await asyncio.wait_for(self._read(reader), self.timeout)
        if response.headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return response

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> LeanResponse:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            content = b"".join(chunks)
        else:
            raise RuntimeError(f"réponse sans longueur (HTTP {status})")
        return LeanResponse(status, headers, content)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def drive(base: str, ids: list[int], officers: int, max_seconds: float, contention: float, seed: int,
                server_pid: int | None = None, client_kind: str = "lean") -> dict:
    from urllib.parse import urlsplit

    host = urlsplit(base).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("le banc ne vise que la boucle locale")
    if client_kind == "httpx":
        import httpx

        client_class, limits = httpx.AsyncClient, httpx.Limits(max_connections=officers,
                                                                max_keepalive_connections=officers)
    else:
        client_class, limits = LeanClient, None
    rng = random.Random(seed)
    state = {d: {"state": "submitted", "version": None} for d in ids}
    busy: set[int] = set()
    latencies: list[float] = []
    ok_latencies: list[float] = []
    outcomes: dict[str, int] = {}
    async with client_class(base_url=base, limits=limits, timeout=30) as client:
        tokens = []
        for i in range(officers):
            r = await client.post("/auth/token", data={"username": f"bench.agent{i}", "password": PASSWORD})
            r.raise_for_status()
            tokens.append({"Authorization": f"Bearer {r.json()['access_token']}"})
        for d in ids:  # versions as the officers would first read them
            r = await client.get(f"/dossiers/{d}", headers=tokens[0])
            state[d]["version"] = r.json()["version"]
        shares = [[d for k, d in enumerate(ids) if k % officers == i] for i in range(officers)]
        cpu_before, driver_before = cpu_seconds_by_process(server_pid), time.process_time()
        started = time.perf_counter()
        deadline = started + max_seconds
        spread: list[int] = []

        async def count_connections() -> None:
            # The officers' connections open together as the timed phase starts; they are all
            # accepted well within a second.
            await asyncio.sleep(min(2.0, max_seconds / 4))
            spread.extend(connections_by_worker(server_pid, urlsplit(base).port))

        counting = asyncio.create_task(count_connections())

        def pick(i: int) -> int | None:
            pending = [d for d in ids if state[d]["state"] in NEXT] if rng.random() < contention else \
                [d for d in shares[i] if state[d]["state"] in NEXT and d not in busy]
            return rng.choice(pending) if pending else None

        async def officer(i: int) -> None:
            headers = tokens[i]
            while time.perf_counter() < deadline:
                d = pick(i)
                if d is None:
                    if not any(state[x]["state"] in NEXT for x in shares[i]):
                        return
                    await asyncio.sleep(0.001)
                    continue
                busy.add(d)
                known = state[d]
                command = NEXT[known["state"]]
                t = time.perf_counter()
                r = await client.post(f"/dossiers/{d}/commands/{command}", json=BODIES[command],
                                      headers={**headers, "If-Match": f'"{known["version"]}"'})
                elapsed = time.perf_counter() - t
                busy.discard(d)
                latencies.append(elapsed)
                if r.status_code == 200:
                    ok_latencies.append(elapsed)
                    body = r.json()
                    if body["version"] >= (state[d]["version"] or 0):
                        after = "requested" if command == "request_documents" else body["state"]
                        state[d] = {"state": after, "version": body["version"]}
                    key = "200"
                elif r.status_code == 409:
                    key = f"409 {r.json().get('rule')}"
                    fresh = (await client.get(f"/dossiers/{d}", headers=headers)).json()  # read it again
                    if fresh["version"] > (state[d]["version"] or 0):
                        s = fresh["state"]
                        if s == "eligibility_review" and fresh["document_requests"]:
                            s = "requested"
                        state[d] = {"state": s, "version": fresh["version"]}
                else:
                    key = f"{r.status_code} {r.json().get('rule') if r.headers.get('content-type', '').startswith('application/') else ''}"
                outcomes[key] = outcomes.get(key, 0) + 1

        await asyncio.gather(*(officer(i) for i in range(officers)))
        seconds = time.perf_counter() - started
        cpu = cpu_seconds_between(cpu_before, cpu_seconds_by_process(server_pid),
                                  time.process_time() - driver_before)
        counting.cancel()

    def pct(values: list[float], p: float) -> float | None:
        if not values:
            return None
        values = sorted(values)
        return round(1000 * values[min(len(values) - 1, int(p * len(values)))], 1)

    expected = sum(n for k, n in outcomes.items() if k.startswith("409"))
    errors = sum(n for k, n in outcomes.items() if not k.startswith(("200", "409")))
    return {"officers": officers, "seconds": round(seconds, 2), "commands": len(latencies),
            "applied": outcomes.get("200", 0), "expected_409": expected, "errors": errors, "outcomes": outcomes,
            "commands_per_second": round(len(latencies) / seconds, 1),
            "applied_per_second": round(outcomes.get("200", 0) / seconds, 1),
            "p50_ms": pct(latencies, 0.50), "p99_ms": pct(latencies, 0.99),
            "p50_ms_applied": pct(ok_latencies, 0.50), "p99_ms_applied": pct(ok_latencies, 0.99),
            "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
            "dossiers_finished": sum(1 for d in ids if state[d]["state"] not in NEXT), "client": client_kind,
            "connections_by_worker": spread,
            "cpu_ms_per_command": {part: round(1000 * seconds / max(1, len(latencies)), 2)
                                   for part, seconds in cpu.items()}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dossiers", type=int, default=400)
    p.add_argument("--officers", type=int, default=8)
    p.add_argument("--workers", type=int, default=None,
                   help="processus uvicorn (défaut : 1 sur SQLite, 1 par cœur sur PostgreSQL)")
    p.add_argument("--postgres", help="URL d'une base PostgreSQL dédiée (supprimée puis recréée)")
    p.add_argument("--max-seconds", type=float, default=60)
    p.add_argument("--contention", type=float, default=0.05, help="part des commandes visant n'importe quel dossier")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--floor-dossiers", type=int, default=50, help="dossiers avancés directement par les services (plancher)")
    p.add_argument("--client", choices=("lean", "httpx"), default="lean",
                   help="client HTTP du pilote : lean (asyncio, HTTP/1.1, peu de CPU) ou httpx")
    p.add_argument("--server", choices=SERVERS, default="ours",
                   help="ours : api.server (un socket SO_REUSEPORT par worker) ; gunicorn : gunicorn --reuse-port "
                        "sur des workers uvicorn (extra « bench »)")
    p.add_argument("--compare", action="store_true",
                   help="les deux serveurs sur la même base, --rounds passes chacun, ordre alterné ; un tableau")
    p.add_argument("--rounds", type=int, default=2, help="avec --compare : passes par serveur")
    p.add_argument("--drive", help=argparse.SUPPRESS)
    p.add_argument("--dossier-file", help=argparse.SUPPRESS)
    p.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.drive:
        ids = json.loads(Path(args.dossier_file).read_text())
        print(json.dumps(asyncio.run(drive(args.drive, ids, args.officers, args.max_seconds, args.contention, args.seed,
                                    args.server_pid, args.client))))
        return
    if not (1 <= args.dossiers <= 20_000 and 1 <= args.officers <= 64 and 0 < args.max_seconds <= 600):
        raise SystemExit("bornes : 1–20 000 dossiers, 1–64 agents, 600 s au plus")
    if not 1 <= args.rounds <= 20 or (args.compare and args.dossiers * 2 * args.rounds > 40_000):
        raise SystemExit("bornes : 1–20 passes, 40 000 dossiers en tout")
    if (args.compare or args.server == "gunicorn") and importlib.util.find_spec("gunicorn") is None:
        raise SystemExit("gunicorn manque : pip install -e '.[bench]' (l'extra « bench » de pyproject.toml)")
    if args.workers is None:
        # One a core: in one interleaved series on 2 cores, 2 workers gave 280–416 commands/s
        # (median 339, 15 runs) and 4 gave 239–397 (median 306, 15 runs); with a socket a worker,
        # 2 workers 418–680 (30 runs) and 4 workers 503–627 (3 runs) another morning (docs/api.md, Load).
        args.workers = (os.cpu_count() or 1) if args.postgres else 1
    result = run(args)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.compare:
        print_comparison(result)
    else:
        print_run(result)
    if result["service_floor"]:
        f = result["service_floor"]
        print(f"plancher (services en direct, séquentiel, sans HTTP) : {f['commands_per_second']} commandes/s, "
              f"{f['ms_per_command']} ms par commande, dont {f['cpu_ms_per_command']} ms de CPU Python")


def print_run(result: dict) -> None:
    print(f"\n{result['database']}, {result['uvicorn_workers']} worker(s) uvicorn ({result['server']}), "
          f"{result['officers']} agents, "
          f"{result['dossiers']} dossiers : {result['commands_per_second']} commandes/s "
          f"(dont {result['applied_per_second']}/s appliquées), p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
          f"409 attendus {result['expected_409']}, autres erreurs {result['errors']}")
    cpu = result["cpu_ms_per_command"]
    print(f"CPU par commande : API {cpu['api']} ms, PostgreSQL {cpu['postgresql']} ms, pilote {cpu['driver']} ms "
          f"(sur {result['cpus']} cœurs)")
    print("connexions des agents par worker : " + ("/".join(map(str, result["connections_by_worker"])) or "—"))


def print_comparison(result: dict) -> None:
    """One table, a line a run, then each server's median over its rounds."""
    print(f"\n{result['database']}, {result['uvicorn_workers']} worker(s), {result['officers']} agents, "
          f"{result['dossiers']} dossiers par passe, {result['cpus']} cœurs")
    head = (f"{'tour':>4} {'serveur':<9} {'cmd/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU API':>8} {'CPU PG':>7} "
            f"{'CPU pil.':>8} {'erreurs':>7} {'connexions':>10} {'charge':>6}")
    print(head)
    print("-" * len(head))
    for r in result["runs"]:
        cpu = r["cpu_ms_per_command"]
        print(f"{r['round']:>4} {r['server']:<9} {r['commands_per_second']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} "
              f"{cpu['api']:>8} {cpu['postgresql']:>7} {cpu['driver']:>8} {r['errors']:>7} "
              f"{'/'.join(map(str, r['connections_by_worker'])) or '—':>10} {r['load_average_before']:>6}")
    print("-" * len(head))
    for kind in SERVERS:
        mine = [r for r in result["runs"] if r["server"] == kind]
        if not mine:
            continue

        def med(key, part=None, mine=mine):
            return round(statistics.median(r[key][part] if part else r[key] for r in mine), 2)

        print(f"{'méd.':>4} {kind:<9} {med('commands_per_second'):>7} {med('p50_ms'):>7} {med('p99_ms'):>7} "
              f"{med('cpu_ms_per_command', 'api'):>8} {med('cpu_ms_per_command', 'postgresql'):>7} "
              f"{med('cpu_ms_per_command', 'driver'):>8}")
    print("(CPU : ms par commande, depuis /proc ; charge : moyenne sur 1 min avant la passe ; « ours » : "
          "api.server, « gunicorn » : bench.gunicorn_worker)")

if __name__ == "__main__":
    main()
