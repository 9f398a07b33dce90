"""Serving the workspace in-process: a uvicorn server in a thread on a free loopback port (the
browser tests, `usine web --demo`), and a fresh demo database to serve."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import closing

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving `app` in a daemon thread until `stop()`."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int | None = None, log_level: str = "warning"):
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level=log_level, lifespan="off",
                                access_log=False, server_header=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def prepare_demo(uow_factory, *, dossiers: int = 60, seed: int = 1) -> dict:
    """The demo (`services.demo.load_demo`: lives played through the services, demo users seeded)
    in the factory's database, which must be empty and have its schema."""
    from services.demo import load_demo
    from services.users import seed_demo_users

    report = load_demo(uow_factory, dossiers=dossiers, seed=seed)
    if not report.get("users"):
        report["users"] = seed_demo_users(uow_factory)
    return report
