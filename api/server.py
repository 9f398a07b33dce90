"""How Usine runs uvicorn: one place for the HTTP protocol and its options.

uvicorn's `--workers N` (N > 1) binds the listening socket itself and hands it to the workers
with `proto` left at 0; accepted connections inherit it, and asyncio only sets `TCP_NODELAY`
on sockets that say `IPPROTO_TCP`. Nagle's algorithm then stays on, and every keep-alive
request after the first waits for the client's delayed ACK: ~40 ms a request on Linux, which
capped the API at ~20 requests/s per client connection (uvicorn issue #3149). The protocol
below sets `TCP_NODELAY` on every accepted TCP connection, whatever path created the
listener.

The event loop is uvloop's: the API's requests spend a tenth of their CPU in asyncio's own
Python code otherwise."""
from __future__ import annotations

import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HTTP_PROTOCOL = "api.server:NoDelayHttpToolsProtocol"
EVENT_LOOP = "uvloop"


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


def uvicorn_args(*, host: str, port: int, workers: int = 1) -> list[str]:
    """The command-line arguments of `python -m uvicorn` for the API (serve, bench)."""
    return ["api.app:create_app", "--factory", "--host", host, "--port", str(port), "--workers", str(workers),
            "--http", HTTP_PROTOCOL, "--loop", EVENT_LOOP]
