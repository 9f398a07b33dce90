"""What the API's observability middleware (`api.observability`: request id, request and
command metrics, access line) adds to one request, beside the floor of the same request
without it, measured in the same run: an ASGI app that answers a command route at once.

    python -m bench.observability [--requests 20000] [--rounds 3] [--access-log]

Prints, per round, µs a request without and with the middleware, and the difference. Compare
with the API's CPU per command of `python -m bench.api_load` (about 5 ms on SQLite here)."""
from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time

from starlette.routing import Route

from api.observability import ObservabilityMiddleware

ROUTE = Route("/dossiers/{dossier_id}/commands/pay", lambda request: None, name="command_pay")
HEADERS = [(b"host", b"127.0.0.1"), (b"authorization", b"Bearer x"), (b"content-type", b"application/json")]


async def answer(scope, receive, send):
    scope["route"] = ROUTE
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"etag", b'"3"')]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message):
    return None


async def _receive():
    return {"type": "http.request"}


async def per_request_us(app, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        scope = {"type": "http", "method": "POST", "path": "/dossiers/1/commands/pay", "headers": HEADERS,
                 "root_path": ""}
        await app(scope, _receive, _send)
    return (time.perf_counter() - start) / count * 1e6


async def run(requests: int, rounds: int) -> list[tuple[float, float]]:
    wrapped = ObservabilityMiddleware(answer)
    out = []
    for _ in range(rounds):
        out.append((await per_request_us(answer, requests), await per_request_us(wrapped, requests)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--access-log", action="store_true", help="with the JSON access line (to a memory buffer)")
    args = parser.parse_args(argv)
    if args.access_log:
        from services.telemetry import add_json_handler

        add_json_handler("usine", "bench", level="INFO", stream=io.StringIO())
    else:
        logging.getLogger("usine.access").setLevel(logging.WARNING)
    for floor, wrapped in asyncio.run(run(args.requests, args.rounds)):
        print(f"plancher (sans le middleware) {floor:6.1f} µs ; avec {wrapped:6.1f} µs ; "
              f"ajout {wrapped - floor:5.1f} µs par requête")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
