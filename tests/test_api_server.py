"""How the API is served. Its HTTP protocol turns Nagle's algorithm off on every connection it
accepts, also on sockets bound without IPPROTO_TCP: otherwise each keep-alive request waits for the
client's delayed ACK. With several workers, each listens on a socket of its own (SO_REUSEPORT), so
connections that arrive together are spread over the workers instead of landing on whichever
woke first; a port already taken is refused; a worker that dies is replaced on its socket, also one
killed while it starts, but not one that cannot start."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from api.server import (
    EVENT_LOOP,
    HTTP_PROTOCOL,
    STARTUP_FAILURE,
    NoDelayHttpToolsProtocol,
    api_command,
    bind_worker_sockets,
    set_no_delay,
)
from bench.api_load import children_of, connections_by_worker
from tests.smtp_sink import free_port

ROOT = Path(__file__).resolve().parents[1]
PID_APP = "tests.asgi_pid_app:app"


def _uvicorn_socket() -> socket.socket:
    import uvicorn

    return uvicorn.Config(lambda *a: None, host="127.0.0.1", port=0).bind_socket()


def _worker_socket() -> socket.socket:
    """As a supervised worker gets it: one of an SO_REUSEPORT group, rebuilt from its descriptor."""
    (sock,) = bind_worker_sockets("127.0.0.1", 0, 1)
    return socket.socket(fileno=sock.detach())


@pytest.mark.parametrize("make_socket", [_uvicorn_socket, _worker_socket], ids=["uvicorn-bind", "worker-fd"])
@pytest.mark.parametrize("loop", [EVENT_LOOP, "asyncio"])
def test_a_keep_alive_connection_to_a_worker_socket_has_nagle_off(loop, make_socket):
    """uvicorn's own path for --workers N (Config.bind_socket(), proto 0) and the supervisor's
    (a socket of the SO_REUSEPORT group handed to the worker), then the server on it."""
    import uvicorn

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=HTTP_PROTOCOL, loop=loop, log_level="warning",
                            lifespan="off")
    sock = make_socket()
    if make_socket is _uvicorn_socket:
        assert sock.proto == 0  # why asyncio would not set TCP_NODELAY on accepted connections itself
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    conn = None
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.01)
        conn = http.client.HTTPConnection(*sock.getsockname()[:2], timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.read() == b"ok"
        (protocol,) = tuple(server.server_state.connections)  # the keep-alive connection, still open
        assert isinstance(protocol, NoDelayHttpToolsProtocol)
        accepted = protocol.transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        if conn is not None:
            conn.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_transport_without_a_tcp_socket_is_left_alone():
    class NoSocket:
        def get_extra_info(self, name):
            return None

    assert set_no_delay(NoSocket()) is False


def test_every_launch_of_the_api_goes_through_the_server_module_with_that_protocol_on_uvloop():
    assert HTTP_PROTOCOL == f"{NoDelayHttpToolsProtocol.__module__}:{NoDelayHttpToolsProtocol.__name__}"
    assert EVENT_LOOP == "uvloop"
    argv = api_command(host="127.0.0.1", port=8000, workers=2)
    assert argv[1:3] == ["-m", "api.server"] and argv[argv.index("--workers") + 1] == "2"
    import inspect

    import bench.api_load
    import cli.api
    import cli.flows

    for module in (cli.flows, bench.api_load):
        assert "api_command(" in inspect.getsource(module), module.__name__
        assert "uvicorn.run(" not in inspect.getsource(module) and '"uvicorn",' not in inspect.getsource(module)
    assert "serve(" in inspect.getsource(cli.api.serve_api)


# -- the supervisor, as a process ------------------------------------------------------------------

def _start(port: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "api.server", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning", "--no-access-log", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _children(pid: int) -> set[int]:
    return set(children_of(pid))


@contextmanager
def _connections(port: int, count: int):
    """`count` keep-alive connections opened together, and on each the pid of the process serving it."""
    opened = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(count)]
    try:
        for conn in opened:
            conn.connect()
        pids = []
        for conn in opened:
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            pids.append(int(response.read()))
        yield pids
    finally:
        for conn in opened:
            conn.close()


def _answering_pids(port: int, count: int) -> list[int]:
    with _connections(port, count) as pids:
        return pids


def _wait_serving(server: subprocess.Popen, port: int, workers: int, timeout: float = 30) -> set[int]:
    """The worker pids once each of them has answered: a worker still starting up holds
    connections in its socket's queue, and killing it then is another case (below)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        children = _children(server.pid)
        if len(children) == workers:
            try:
                # 16 connections miss one of 2 sockets once in 2^15; the next round retries.
                if set(_answering_pids(port, 8 * workers)) == children:
                    return children
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"{workers} workers not serving after {timeout} s")


def _stop(server: subprocess.Popen) -> int:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=40)
    finally:
        if server.poll() is None:
            server.kill()


def test_connections_opened_together_are_spread_over_the_workers_each_on_its_own_socket():
    port = free_port()
    server = _start(port, "--workers", "2", "--app", PID_APP)
    try:
        workers = _wait_serving(server, port, 2)
        with _connections(port, 32) as pids:
            # Both workers serve (all 32 on one socket by the kernel's hash: 1 chance in 2^31) ...
            assert set(pids) == workers
            # ... and each keeps the connections it was given, as the load bench counts them.
            held = connections_by_worker(server.pid, port)
            assert sorted(held) == sorted(pids.count(pid) for pid in workers) and sum(held) == 32
        listening = subprocess.run(["ss", "-tlnpH", f"( sport = :{port} )"], capture_output=True, text=True).stdout
        assert len(listening.splitlines()) == 2  # two listening sockets on the one port
    finally:
        assert _stop(server) == 0
    assert not _children(server.pid)


@pytest.mark.parametrize("second_workers", ["2", "1"])
def test_a_second_server_on_a_port_in_use_is_refused_and_the_first_keeps_serving(second_workers):
    port = free_port()
    first = _start(port, "--workers", "2", "--app", PID_APP)
    try:
        workers = _wait_serving(first, port, 2)
        second = _start(port, "--workers", second_workers, "--app", PID_APP, "--log-level", "info")
        _, err = second.communicate(timeout=30)
        assert second.returncode == STARTUP_FAILURE
        assert "address already in use" in err
        assert "startup" not in err.lower()  # refused before the app starts, not after
        assert set(_answering_pids(port, 16)) <= workers
    finally:
        _stop(first)


def test_a_worker_that_dies_is_replaced_on_its_socket_and_no_request_is_lost():
    port = free_port()
    server = _start(port, "--workers", "2", "--app", PID_APP)
    try:
        workers = _wait_serving(server, port, 2)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        # Connections made while it is down wait in its socket's queue for the replacement.
        pids = _answering_pids(port, 24)
        now = _wait_serving(server, port, 2)
        assert victim not in now and len(now & workers) == 1
        assert set(pids) <= now and len(pids) == 24
    finally:
        assert _stop(server) == 0


def test_a_worker_killed_while_it_starts_is_restarted_and_the_others_keep_serving():
    port = free_port()
    server = _start(port, "--workers", "2", "--app", "tests.asgi_pid_app:slow_start_app", "--log-level", "info")
    try:
        deadline = time.monotonic() + 10
        while len(children := _children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim = min(children)
        os.kill(victim, signal.SIGKILL)  # within its 1.5 s of startup
        now = _wait_serving(server, port, 2)
        assert victim not in now and len(now & children) == 1
    finally:
        assert _stop(server) == 0
    _, err = server.communicate()
    assert f"Worker {victim} killed before serving (signal 9): restarted on its socket." in err


def _run_until_it_gives_up(app: str) -> tuple[subprocess.Popen, str]:
    """Two workers of an app that cannot serve: the server, once ended, and what it logged."""
    server = _start(free_port(), "--workers", "2", "--app", app)
    try:
        _, err = server.communicate(timeout=60)
    finally:
        _stop(server)
    return server, err


def test_a_worker_killed_each_time_it_starts_stops_the_server_after_three_tries():
    server, err = _run_until_it_gives_up("tests.asgi_pid_app:killed_at_startup_app")
    assert server.returncode == STARTUP_FAILURE
    # Each of the 2 sockets restarts its worker twice at most; the first to fail a third time stops all.
    assert 2 <= err.count("killed before serving (signal 9): restarted on its socket.") <= 4
    assert "killed before serving (signal 9), 3 times in a row on its socket: stopping the API." in err
    assert not _children(server.pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_stop_asked_by_a_signal_ends_the_server_with_0_and_no_traceback(workers, sig):
    """Ctrl-C in a terminal, SIGINT from `usine serve`, SIGTERM from systemd: requests in flight
    finish, then the process ends as one that was asked to stop."""
    port = free_port()
    server = _start(port, "--workers", str(workers), "--app", PID_APP, "--log-level", "info")
    try:
        if workers == 1:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None and time.monotonic() < deadline, "not serving"
                try:
                    assert _answering_pids(port, 1) == [server.pid]  # served by the process itself
                    break
                except OSError:
                    time.sleep(0.1)
        else:
            _wait_serving(server, port, workers)
        server.send_signal(sig)
        _, err = server.communicate(timeout=40)
    finally:
        _stop(server)
    assert server.returncode == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.count("Finished server process") == workers
    assert not _children(server.pid)


def test_workers_that_cannot_start_stop_the_server_instead_of_restarting_forever():
    server, err = _run_until_it_gives_up("tests.asgi_pid_app:no_such_app")
    assert server.returncode == STARTUP_FAILURE
    assert "ended before serving" in err
    assert not _children(server.pid)


def test_usine_api_refuses_several_workers_on_sqlite_and_says_why(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app as cli_app
    from cli.main import register_extensions
    from services.config import get_settings

    monkeypatch.setenv("USINE_DATABASE_URL", f"sqlite:///{tmp_path}/usine.db")
    get_settings.cache_clear()
    try:
        register_extensions()
        refused = CliRunner().invoke(cli_app, ["api", "--port", str(free_port()), "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 2
    assert "--workers" in refused.output and "SQLite" in refused.output and "PostgreSQL" in refused.output
