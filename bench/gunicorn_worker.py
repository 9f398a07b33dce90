"""gunicorn's uvicorn worker, set up as `api.server` sets up its own workers: for the load bench's
`--server gunicorn` only (gunicorn is the `bench` extra, not a dependency of Usine).

    python -m gunicorn 'api.app:create_app()' -k bench.gunicorn_worker.UsineUvicornWorker \\
        -w 2 -b 127.0.0.1:8000 --reuse-port

Same HTTP protocol (httptools, Nagle off on every accepted connection: `api.server`), same event
loop (uvloop), no proxy headers, no `server` header, and Usine's logging with its access line
off, as `bench.api_load` starts `api.server`: what differs is only the supervisor.

**Nagle.** gunicorn sets `TCP_NODELAY` on its listening socket (`gunicorn/sock.py`, TCPSocket), and
Linux copies it to the connections that socket accepts: gunicorn does not have uvicorn's
`--workers` bug (uvicorn #3149, `api.server`). The worker keeps `api.server`'s protocol anyway, so
that both servers run the same per-connection code.

**`--reuse-port`** sets `SO_REUSEPORT` on gunicorn's one listening socket, bound by the arbiter
before it forks: every worker then accepts from that same socket, as uvicorn's `--workers` does.
It lets another process bind the port too; it does not give each worker a socket of its own
(what `api.server`'s supervisor does).

uvicorn 0.54 still ships `uvicorn.workers` (deprecated for the `uvicorn-worker` package, the same
class): the import below silences its warning, not any other."""
from __future__ import annotations

import logging.config
import warnings

from api.server import EVENT_LOOP, HTTP_PROTOCOL
from services.telemetry import logging_config

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The `uvicorn.workers` module is deprecated", category=DeprecationWarning)
    from uvicorn.workers import UvicornWorker


class UsineUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {"loop": EVENT_LOOP, "http": HTTP_PROTOCOL, "proxy_headers": False, "server_header": False,
                     "access_log": False}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Usine's logging, as api.server's workers have it: gunicorn's --log-level, access line off.
        level = logging.getLevelName(self.log.error_log.level).lower()
        logging.config.dictConfig(logging_config("api", level=level, access_log=False))
