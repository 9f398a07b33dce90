"""What the flows run against: the service's database, SMTP sender and clock.

By default, the service as configured from the environment (`services.runtime`,
`services.delivery.sender_from_settings`). Tests, and anything running flows in-process, swap
them with `using(...)` — flows are called in the same process, so a module-level setting
reaches them; deployments served by `usine serve` read the environment."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from services.clock import Clock


@dataclass(frozen=True)
class FlowRuntime:
    uow_factory: Callable
    sender: Any
    clock: Clock


_override: dict[str, Any] = {}


def current() -> FlowRuntime:
    uow_factory = _override.get("uow_factory")
    sender = _override.get("sender")
    clock = _override.get("clock")
    if uow_factory is None or clock is None:
        from services.runtime import default_clock, default_uow_factory

        uow_factory = uow_factory or default_uow_factory()
        clock = clock or default_clock()
    if sender is None:
        from services.delivery import sender_from_settings

        sender = sender_from_settings()
    return FlowRuntime(uow_factory, sender, clock)


@contextmanager
def using(*, uow_factory: Callable | None = None, sender: Any = None, clock: Clock | None = None) -> Iterator[None]:
    """Run the flows called inside this block against these (None keeps the default)."""
    previous = dict(_override)
    _override.update({k: v for k, v in {"uow_factory": uow_factory, "sender": sender, "clock": clock}.items()
                      if v is not None})
    try:
        yield
    finally:
        _override.clear()
        _override.update(previous)


def instant(at: str | None, clock: Clock | None = None) -> datetime:
    """The instant a flow runs as of: `at` (ISO 8601 with an offset), or the service clock's now."""
    if at is None or at == "":
        return (clock or current().clock).now()
    try:
        value = datetime.fromisoformat(at)
    except ValueError:
        raise ValueError(f"at : instant ISO 8601 attendu (ex. 2021-03-08T06:00:00+01:00), reçu « {at} »") from None
    if value.tzinfo is None:
        raise ValueError(f"at : l'instant doit porter son décalage horaire (ex. +01:00), reçu « {at} »")
    return value
