"""The guard of the one writer of a dossier's state and amounts (`services.dossier_writes`).

A listener on every engine's cursor (`before_cursor_execute`) reads each UPDATE of `dossiers`
that is sent to the database — whatever built it: the ORM's flush, a Core statement, raw SQL —
and records those that set the state (`status`) or an amount without the one writer's execution
option. `tests/conftest.py` installs it for the whole suite and fails the test during which one
was recorded; `tests/test_one_state_writer.py` shows it catching one."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from sqlalchemy import Engine, event

from services.dossier_writes import STATE_COLUMNS, WRITE_OPTION

_UPDATE = re.compile(r'^\s*UPDATE\s+"?dossiers"?\s+SET\s+(?P<set>.*?)(?:\s+WHERE\s|$)', re.IGNORECASE | re.DOTALL)
_ASSIGNED = re.compile(r'(?:^|,)\s*"?(\w+)"?\s*=')


@dataclass(frozen=True)
class DossierUpdate:
    columns: frozenset[str]  # the state and amount columns it sets
    through_the_writer: bool
    sql: str


_lock = threading.Lock()
seen: list[DossierUpdate] = []


def _listen(conn, cursor, statement, parameters, context, executemany) -> None:
    if not statement.lstrip()[:6].upper() == "UPDATE":
        return
    found = _UPDATE.match(statement)
    if found is None:
        return
    columns = frozenset(_ASSIGNED.findall(found["set"])) & STATE_COLUMNS
    if not columns:
        return
    options = context.execution_options if context is not None else {}
    with _lock:
        seen.append(DossierUpdate(columns, bool(options.get(WRITE_OPTION)), statement))


def install() -> None:
    if not event.contains(Engine, "before_cursor_execute", _listen):
        event.listen(Engine, "before_cursor_execute", _listen)


def take() -> list[DossierUpdate]:
    """What was recorded since the last call, forgotten."""
    with _lock:
        taken = list(seen)
        seen.clear()
    return taken


def rogue(updates: list[DossierUpdate]) -> list[DossierUpdate]:
    return [u for u in updates if not u.through_the_writer]
