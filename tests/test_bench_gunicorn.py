"""The load bench's gunicorn side (`bench.api_load --server gunicorn / --compare`): gunicorn's
workers run what api.server's run, so that the comparison measures the supervisor alone.
gunicorn is the `bench` extra, not a dependency: skipped where it is not installed."""
from __future__ import annotations

import socket

import pytest

pytest.importorskip("gunicorn")

from api.server import APP, EVENT_LOOP, HTTP_PROTOCOL  # noqa: E402
from bench.api_load import SERVERS, gunicorn_command  # noqa: E402


def test_gunicorn_workers_run_api_servers_protocol_loop_and_settings():
    from bench.gunicorn_worker import UsineUvicornWorker

    kwargs = UsineUvicornWorker.CONFIG_KWARGS
    assert kwargs["http"] == HTTP_PROTOCOL and kwargs["loop"] == EVENT_LOOP
    assert kwargs["proxy_headers"] is False and kwargs["server_header"] is False and kwargs["access_log"] is False


def test_gunicorn_serves_the_app_factory_of_usine_api_on_loopback_with_reuse_port():
    argv = gunicorn_command(port=8123, workers=2)
    assert argv[1:3] == ["-m", "gunicorn"] and argv[3] == f"{APP}()"
    assert argv[argv.index("--worker-class") + 1] == "bench.gunicorn_worker.UsineUvicornWorker"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8123" and argv[argv.index("--workers") + 1] == "2"
    assert "--reuse-port" in argv
    assert SERVERS == ("ours", "gunicorn")


def test_gunicorn_listening_socket_gives_its_connections_nagle_off():
    """Why the worker needs no TCP_NODELAY fix of its own: gunicorn sets it on the listening
    socket and Linux copies it to every connection accepted there (api.server's protocol sets it
    again, harmlessly)."""
    import logging

    from gunicorn.config import Config
    from gunicorn.sock import TCPSocket

    conf = Config()
    conf.set("reuse_port", True)
    listener = TCPSocket(("127.0.0.1", 0), conf, logging.getLogger("test"))
    try:
        listener.sock.setblocking(True)
        with socket.create_connection(listener.sock.getsockname(), timeout=5):
            accepted, _ = listener.sock.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                assert accepted.proto == 0  # what asyncio looks at before setting it itself (api.server)
    finally:
        listener.close()
