"""How Usine runs the API under uvicorn: the HTTP protocol, the event loop, and the workers.

**Nagle off.** uvicorn's `--workers N` (N > 1) binds the listening socket with `proto` left at 0;
accepted connections inherit it, and asyncio only sets `TCP_NODELAY` on sockets that say
`IPPROTO_TCP`. Nagle's algorithm then stays on, and every keep-alive request after the first
waits for the client's delayed ACK: ~40 ms a request on Linux, which capped the API at ~20
requests/s per client connection (uvicorn issue #3149). The protocol below sets `TCP_NODELAY`
on every accepted TCP connection, whatever path created the listener.

**uvloop.** The API's requests spend a tenth of their CPU in asyncio's own Python code otherwise.

**One listening socket a worker.** uvicorn's workers share one listening socket. Clients that
connect together (the officers' keep-alive connections, a proxy's upstream pool) are then
accepted by whichever worker wakes first, and an event loop that wakes accepts all those
pending: 8 connections ended up 8/0 on 2 workers for a whole load run, the API one process
(docs/api.md, Load). Here the supervisor binds one socket a worker with `SO_REUSEPORT`: the
kernel gives each new connection to one of the sockets by a hash of its addresses, whoever is
awake. The supervisor keeps the sockets open, so a worker that dies is restarted on its own
socket and the connections queued there wait for it instead of being reset.

`SO_REUSEPORT` would also let a second server of the same user join the port silently; the
supervisor first binds the address without it, so a port already taken is refused as uvicorn
would refuse it.

    python -m api.server --host 127.0.0.1 --port 8000 --workers 2   # what `usine api` runs
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.telemetry import logging_config

HTTP_PROTOCOL = "api.server:NoDelayHttpToolsProtocol"
EVENT_LOOP = "uvloop"
APP = "api.app:create_app"
# uvicorn's exit code when the app or its socket cannot start (the supervisor's too, when a
# worker ends before it served): restarting would fail the same way.
STARTUP_FAILURE = 3
# A worker killed by a signal while it starts is restarted, this many times in a row at most.
MAX_KILLS_BEFORE_SERVING = 3
# A worker's graceful stop (requests in flight finish) before it is killed.
STOP_TIMEOUT_SECONDS = 25
_ROOT = Path(__file__).resolve().parent.parent

logger = logging.getLogger("uvicorn.error")
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _forget_metrics_of(pid: int) -> None:
    """A worker ended: its live gauges go (its counters stay in the directory: they never go back)."""
    if os.environ.get(METRICS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def set_no_delay(transport) -> bool:
    """Turn Nagle's algorithm off on the transport's TCP socket; False when it has none."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport) -> None:
        set_no_delay(transport)
        super().connection_made(transport)


def api_command(*, host: str, port: int, workers: int = 1, log_level: str = "info",
                access_log: bool = True) -> list[str]:
    """The command line that serves the API (`usine serve`, the bench): this module's main."""
    argv = [sys.executable, "-m", "api.server", "--host", host, "--port", str(port), "--workers", str(workers),
            "--log-level", log_level]
    return argv if access_log else [*argv, "--no-access-log"]


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises the signal that stopped it once it has shut down gracefully, for a
        program that embeds it: a KeyboardInterrupt traceback after a clean Ctrl-C, death by
        SIGTERM. This process only serves: a stop it was asked for ends it with 0."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server


def _uvicorn_config(*, host: str, port: int, log_level: str, access_log: bool, app: str = APP):
    import uvicorn

    # Usine's logging (JSON lines by default, `services.telemetry`): uvicorn's loggers go through
    # it, and its access line gives way to Usine's (`usine.access`: the route, the duration, the
    # request id), which `access_log` turns on or off.
    return uvicorn.Config(app, factory=app == APP, host=host, port=port, http=HTTP_PROTOCOL, loop=EVENT_LOOP,
                          log_level=log_level, access_log=False, proxy_headers=False, server_header=False,
                          log_config=logging_config("api", level=log_level, access_log=access_log))


def _configure_logging(log_level: str, access_log: bool = True) -> None:
    logging.config.dictConfig(logging_config("api", level=log_level, access_log=access_log))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_address_free(host: str, port: int) -> None:
    """Bind the address the way a plain server would (no SO_REUSEPORT), then let it go: an
    address in use raises OSError(EADDRINUSE) here, before any worker starts."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are no owner
        probe.bind((host, port))


def bind_worker_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address, in one SO_REUSEPORT group (port 0: the first
    one's port)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(_family(host), socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(2048)  # uvicorn's default backlog
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Worker:
    """A worker process and the pipe on which it says it has started serving."""

    def __init__(self, process: subprocess.Popen, ready_fd: int):
        self.process, self.ready_fd = process, ready_fd

    def had_started(self) -> bool:
        """Once the process has ended: did it ever serve? (It writes one byte when it does.)"""
        try:
            return os.read(self.ready_fd, 1) == b"1"
        finally:
            self.close()

    def close(self) -> None:
        if self.ready_fd >= 0:
            os.close(self.ready_fd)
            self.ready_fd = -1


class Supervisor:
    """Starts one worker process a socket, restarts a worker that dies (unless it ended by
    itself before serving, or was killed before serving three times in a row), and stops them
    all on SIGINT or SIGTERM."""

    def __init__(self, *, host: str, port: int, workers: int, log_level: str = "info", access_log: bool = True,
                 app: str = APP):
        self.host, self.port, self.count = host, port, workers
        self.log_level, self.access_log, self.app = log_level, access_log, app
        self.sockets: list[socket.socket] = []
        self.workers: list[_Worker] = []
        self.killed_before_serving = [0] * workers  # consecutive, by socket
        self.stopping = False

    def _spawn(self, sock: socket.socket) -> _Worker:
        ready_read, ready_write = os.pipe()
        argv = [sys.executable, "-m", "api.server", "--worker-fd", str(sock.fileno()), "--ready-fd", str(ready_write),
                "--host", self.host, "--port", str(self.port), "--log-level", self.log_level, "--app", self.app]
        if not self.access_log:
            argv.append("--no-access-log")
        try:
            process = subprocess.Popen(argv, pass_fds=(sock.fileno(), ready_write), cwd=_ROOT)
        finally:
            os.close(ready_write)  # the worker's copy is the only one left: its end reads as EOF
        return _Worker(process, ready_read)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def _metrics_dir(self) -> str | None:
        """Several workers: prometheus-client's multiprocess mode, each worker's values in files of
        one directory that every worker's `GET /metrics` adds up (`services.metrics`). The one
        given in PROMETHEUS_MULTIPROC_DIR (its owner empties it), else a new one, removed at
        the end. Returns the directory to remove."""
        if os.environ.get(METRICS_ENV):
            return None
        import tempfile

        path = tempfile.mkdtemp(prefix="usine-metrics-")
        os.environ[METRICS_ENV] = path  # inherited by the workers spawned below
        return path

    def run(self) -> int:
        check_address_free(self.host, self.port)
        self.sockets = bind_worker_sockets(self.host, self.port, self.count)
        owned_metrics_dir = self._metrics_dir()
        self.port = self.sockets[0].getsockname()[1]
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            self.workers = [self._spawn(sock) for sock in self.sockets]
            logger.info("Usine API: %d workers on http://%s:%d, one SO_REUSEPORT socket each (pids %s)",
                        self.count, self.host, self.port, ", ".join(str(w.process.pid) for w in self.workers))
            while not self.stopping:
                for index, worker in enumerate(self.workers):
                    if worker.process.poll() is None or self.stopping:
                        continue
                    code = self._replace(index, worker)
                    if code:
                        self.stopping = True
                        break
                time.sleep(0.2)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets:
                sock.close()
            if owned_metrics_dir is not None:
                import shutil

                os.environ.pop(METRICS_ENV, None)
                shutil.rmtree(owned_metrics_dir, ignore_errors=True)
        return code

    def _replace(self, index: int, worker: _Worker) -> int:
        """Restart the worker that ended on its socket, or answer STARTUP_FAILURE when restarting
        would fail the same way."""
        returncode = worker.process.returncode
        _forget_metrics_of(worker.process.pid)
        if worker.had_started():
            self.killed_before_serving[index] = 0
            logger.warning("Worker %d ended (code %s): restarted on its socket.", worker.process.pid, returncode)
        elif returncode >= 0:
            # It stopped by itself before serving: the app, its settings or its database cannot
            # start, and every restart would fail the same way.
            logger.error("Worker %d ended before serving (code %s): stopping the API.", worker.process.pid,
                         returncode)
            return STARTUP_FAILURE
        else:
            # Killed while starting (the OOM killer, an operator): not the app's doing, unless it
            # happens each time.
            self.killed_before_serving[index] += 1
            if self.killed_before_serving[index] >= MAX_KILLS_BEFORE_SERVING:
                logger.error("Worker %d killed before serving (signal %d), %d times in a row on its socket: "
                             "stopping the API.", worker.process.pid, -returncode, MAX_KILLS_BEFORE_SERVING)
                return STARTUP_FAILURE
            logger.warning("Worker %d killed before serving (signal %d): restarted on its socket.",
                           worker.process.pid, -returncode)
        self.workers[index] = self._spawn(self.sockets[index])
        return 0

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for worker in self.workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("Worker %d still running after %d s: killed.", worker.process.pid,
                               STOP_TIMEOUT_SECONDS)
                worker.process.kill()
                worker.process.wait()
            worker.close()


def serve(*, host: str, port: int, workers: int = 1, log_level: str = "info", access_log: bool = True,
          app: str = APP) -> int:
    """Serve the API: in this process with one worker, under a Supervisor with more."""
    try:
        if workers > 1:
            _configure_logging(log_level, access_log)
            return Supervisor(host=host, port=port, workers=workers, log_level=log_level, access_log=access_log,
                              app=app).run()
        # Refused before the app starts up: uvicorn binds after its lifespan has run, and would
        # first log "Application startup complete" on a port it cannot have.
        check_address_free(host, port)
    except OSError as error:  # the address: in use, not this machine's, not allowed
        # One worker logs only through uvicorn's own loggers; the supervisor's handler, if any, stays.
        if not logging.getLogger().handlers:
            _configure_logging(log_level, access_log)
        logger.error("[Errno %s] error while attempting to bind on address %r: %s", error.errno, (host, port),
                     (error.strerror or str(error)).lower())
        return STARTUP_FAILURE
    server = _server_class()(_uvicorn_config(host=host, port=port, log_level=log_level, access_log=access_log,
                                             app=app))
    server.run()
    return 0 if server.started else STARTUP_FAILURE


def _run_worker(fd: int, ready_fd: int | None, *, host: str, port: int, log_level: str, access_log: bool,
                app: str) -> int:
    class Worker(_server_class()):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and ready_fd is not None:
                os.write(ready_fd, b"1")
                os.close(ready_fd)

    sock = socket.socket(fileno=fd)  # family and type read from the descriptor
    server = Worker(_uvicorn_config(host=host, port=port, log_level=log_level, access_log=access_log, app=app))
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILURE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.server", description="Serve Usine's REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--app", default=APP, help="ASGI app (a factory when it is Usine's)")
    parser.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_fd is not None:
        return _run_worker(args.worker_fd, args.ready_fd, host=args.host, port=args.port, log_level=args.log_level,
                           access_log=args.access_log, app=args.app)
    return serve(host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
                 access_log=args.access_log, app=args.app)


if __name__ == "__main__":
    sys.exit(main())
