"""What the API, the CLI and the flows say about themselves: one JSON object a log line, and the
id of the request (or of the CLI invocation, or of the flow run) that each line and each event
belongs to.

**The request id** lives in a context variable (`REQUEST_ID`): the API's middleware binds it
for the duration of a request (the client's `X-Request-ID` when it is well formed, else a new
one), `usine` binds one for each invocation, the flows bind their Prefect flow run's id. Every
log line carries it (`RequestIdFilter`) and every event written meanwhile stores it in its
`request_id` column (`services.events.event_row`), outside the hashed payload. Context
variables follow the request into the thread that runs a synchronous endpoint (Starlette's
threadpool copies the context), so the services read it without taking it as an argument.

**Why the standard library's logging, with python-json-logger's formatter, rather than
structlog**: uvicorn, SQLAlchemy, Prefect and the web workspace all log through `logging`;
one formatter on one handler turns all their lines into JSON, with the request id added by a
filter, and the services keep their `logging.getLogger(...)` calls. structlog would need the
same bridge to the standard library for those loggers, and one more dependency, for nothing
the request id does not already give. python-json-logger is already installed with Prefect;
its orjson formatter writes UTF-8 (French stays readable).

**What a line never holds**: passwords, tokens, secrets, document contents. The access line
logs the path without its query string; any `extra` field whose name says password, token,
secret or authorization is masked, and so is a bearer token or a JWT inside a message
(`Redactor`). SQLAlchemy engines hide statement parameters in their error messages
(`db.engine.make_engine`), so a failed INSERT of a document or an account logs no content."""
from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import re
import sys
from contextvars import ContextVar
from typing import Iterator

REQUEST_ID: ContextVar[str | None] = ContextVar("usine_request_id", default=None)
HEADER = "X-Request-ID"
# Visible ASCII that no log or header parser trips on (UUIDs, ULIDs, a proxy's trace ids), 1-128.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
REQUEST_ID_MAX = 128


def new_request_id(prefix: str = "") -> str:
    """128 random bits in hex (a UUID4's randomness, without building a UUID object)."""
    return prefix + os.urandom(16).hex()


def well_formed(value: str | None) -> bool:
    return value is not None and _WELL_FORMED.fullmatch(value) is not None


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextlib.contextmanager
def bound_request_id(value: str | None = None, *, prefix: str = "", keep: bool = False) -> Iterator[str]:
    """Bind a request id for the block (a new one when `value` is None). With `keep`, an id
    already bound (a flow run's, a CLI invocation's) is kept instead."""
    existing = REQUEST_ID.get()
    if keep and existing:
        yield existing
        return
    value = value or new_request_id(prefix)
    token = REQUEST_ID.set(value)
    try:
        yield value
    finally:
        REQUEST_ID.reset(token)


# -- log lines -------------------------------------------------------------------------------------

MASK = "[masqué]"
_SENSITIVE_KEY = re.compile(r"password|passwd|token|secret|authorization|cookie|api_key|^content$|^body$", re.IGNORECASE)
_SENSITIVE_TEXT = (
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # a JWT
    re.compile(r"(?i)(password|mot de passe|passwd)(\s*[=:]\s*)\S+"),
)


def redact_text(text: str) -> str:
    for pattern in _SENSITIVE_TEXT:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        else:
            text = pattern.sub(MASK, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the bound one, or None) and `service` to every record."""

    def __init__(self, service: str = "usine"):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        if not hasattr(record, "service"):
            record.service = self.service
        return True


def _formatter_base():
    try:
        from pythonjsonlogger.orjson import OrjsonFormatter as base
    except ImportError:  # pragma: no cover — orjson is a dependency
        from pythonjsonlogger.json import JsonFormatter as base
    return base


class JsonFormatter(_formatter_base()):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, service,
    request_id, and the record's `extra` fields, sensitive ones masked."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def process_log_record(self, log_data):
        log_data.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        for key, value in list(log_data.items()):
            if key in ("message", "exc_info", "stack_info") and isinstance(value, str):
                log_data[key] = redact_text(value)
            elif _SENSITIVE_KEY.search(key) and value is not None:
                log_data[key] = MASK
        return log_data


TEXT_FORMAT = "%(levelname)s:     %(message)s"


def log_format() -> str:
    """`USINE_LOG_FORMAT`: json (default) or text (uvicorn's own look, for a person at a terminal)."""
    value = os.environ.get("USINE_LOG_FORMAT", "json").strip().lower()
    return "text" if value == "text" else "json"


def logging_config(service: str, *, level: str | None = None, access_log: bool = True) -> dict:
    """A `logging.config.dictConfig` for one process: every logger (uvicorn's too) through one
    stderr handler, JSON by default. uvicorn's own access line is replaced by Usine's
    (`usine.access`, written by the API's middleware with the route, the status, the duration
    and the request id)."""
    level = (level or os.environ.get("USINE_LOG_LEVEL") or "INFO").upper()
    json_lines = log_format() == "json"
    formatter = ({"()": "services.telemetry.JsonFormatter"} if json_lines
                 else {"format": TEXT_FORMAT + " [%(request_id)s]"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "services.telemetry.RequestIdFilter", "service": service}},
        "formatters": {"usine": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "usine", "filters": ["request_id"]}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "usine.access": {"level": "INFO" if access_log else "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(service: str, *, level: str | None = None, access_log: bool = True) -> None:
    logging.config.dictConfig(logging_config(service, level=level, access_log=access_log))


def add_json_handler(logger_name: str, service: str, *, level: str | None = None, stream=None) -> logging.Handler:
    """One JSON handler on one logger (not the root): for a process whose logging another
    library configures (Prefect's flow runs), so that Usine's own lines are JSON without
    touching that library's handlers. Idempotent."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if getattr(handler, "_usine_json", False):
            return handler
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter(service))
    handler._usine_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel((level or os.environ.get("USINE_LOG_LEVEL") or "INFO").upper())
    logger.propagate = False
    return handler
