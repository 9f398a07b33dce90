"""The API's request id, request metrics and access line: one pure ASGI middleware (no
BaseHTTPMiddleware: it would copy every body through a memory stream), outermost of Usine's.

For each HTTP request: the request id is the client's `X-Request-ID` when it is well formed
(`services.telemetry.well_formed`), else a new one; it is bound for the request
(`services.telemetry.REQUEST_ID`: log lines, events) and echoed in the response's
`X-Request-ID`. Once the answer is sent: `usine_http_requests_total` and
`usine_http_request_duration_seconds` by route *template* (`/dossiers/{dossier_id}`, never the
id itself: a bounded number of series), and one `usine.access` log line (method, route, path
without its query string, status, duration, request id).

**Commands** are counted here too, the one place every command request passes whatever
answers it (the command itself, the token check, the body's validation, the idempotency
store, the body-size limit): `usine_commands_total{command, outcome, rule}` for the routes
named `command_<name>` (`api.routes_commands`), the rule read from the problem+json body of a
refusal; a replay (`Idempotent-Replayed`) is its own outcome. And any answer whose rule is
`idempotency_key_reused` or `idempotency_in_progress`, on any route, counts in
`usine_idempotency_conflicts_total`. A success costs a prefix test and one counter; only error
bodies (small) are read."""
from __future__ import annotations

import logging
import time

import orjson
from starlette.routing import Mount

from services import metrics, telemetry

access_log = logging.getLogger("usine.access")
log = logging.getLogger("usine.api")
_HEADER = telemetry.HEADER.lower().encode("latin-1")
UNMATCHED = "<unmatched>"


def route_template(scope) -> str:
    """The template of the route that answered (with the path of the app it is mounted in), or
    `<unmatched>` when none did."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    root = scope.get("root_path", "") or ""
    if isinstance(route, Mount):  # a mount answered itself (static files): root_path ends with its path
        return f"{root}/{{path}}"
    return root + (getattr(route, "path_format", None) or getattr(route, "path", "") or "")


class ObservabilityMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming is not None and telemetry.well_formed(incoming) else telemetry.new_request_id()
        echoed = (_HEADER, request_id.encode("latin-1"))
        token = telemetry.REQUEST_ID.set(request_id)
        start = time.perf_counter()
        state = _Answer()

        async def send_with_id(message):
            kind = message["type"]
            if kind == "http.response.start":
                state.started(message, scope)
                message["headers"] = [*message.get("headers", ()), echoed]
            elif kind == "http.response.body" and state.problem is not None:
                state.read(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Left bound: the app's last-resort handler (outside this middleware) logs the
            # error with it. The answer carries it too, when nothing was sent yet.
            if not state.sent:
                from starlette.requests import Request

                from api.problems import problem_response

                response = problem_response(500, "Erreur interne : l'incident est journalisé.",
                                            request=Request(scope))
                await response(scope, receive, send_with_id)
            self._record(scope, state, start, request_id)
            raise
        self._record(scope, state, start, request_id)
        telemetry.REQUEST_ID.reset(token)

    @staticmethod
    def _record(scope, state: "_Answer", start: float, request_id: str) -> None:
        elapsed = time.perf_counter() - start
        method, route, status = scope["method"], route_template(scope), state.status
        metrics.observe_request(method, route, status, elapsed)
        rule = state.rule()
        if state.command is not None:
            metrics.count_command(state.command, status, rule, state.replayed)
        if rule in IDEMPOTENCY_RULES:
            metrics.IDEMPOTENCY_CONFLICTS.labels(rule).inc()
        if access_log.isEnabledFor(logging.INFO):
            extra = {"method": method, "route": route, "path": scope["path"], "status": status,
                     "duration_ms": round(elapsed * 1000, 3), "request_id": request_id}
            if state.command is not None:
                extra["command"] = state.command
            if rule:
                extra["rule"] = rule
            access_log.info("%s %s %d", method, scope["path"], status, extra=extra)


IDEMPOTENCY_RULES = frozenset({"idempotency_key_reused", "idempotency_in_progress"})
_COMMAND_ROUTE = "command_"
_PROBLEM = b"application/problem+json"
_REPLAYED = b"idempotent-replayed"
_MAX_PROBLEM_BYTES = 64 * 1024


class _Answer:
    """What the middleware learns of the answer as it is sent."""

    __slots__ = ("status", "sent", "command", "replayed", "problem")

    def __init__(self):
        self.status, self.sent, self.command, self.replayed, self.problem = 500, False, None, False, None

    def started(self, message, scope) -> None:
        self.status, self.sent = message["status"], True
        route = scope.get("route")
        name = getattr(route, "name", None) or ""
        if name.startswith(_COMMAND_ROUTE):
            self.command = name[len(_COMMAND_ROUTE):]
            if self.command == "unknown":
                self.command = "<unknown>"
        elif self.status < 400:
            return
        for key, value in message.get("headers", ()):
            key = key.lower()
            if key == b"content-type" and value.startswith(_PROBLEM):
                self.problem = bytearray()
            elif key == _REPLAYED:
                self.replayed = True

    def read(self, chunk: bytes) -> None:
        if len(self.problem) + len(chunk) <= _MAX_PROBLEM_BYTES:
            self.problem += chunk

    def rule(self) -> str | None:
        if not self.problem:
            return None
        try:
            rule = orjson.loads(bytes(self.problem)).get("rule")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return rule if isinstance(rule, str) and len(rule) <= 64 else None
