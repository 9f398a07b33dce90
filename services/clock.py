"""The one clock of the service. Services take it as an argument; tests freeze it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FrozenClock:
    """A clock that says what it is told: the scenario runner sets it to each step's instant."""

    def __init__(self, instant: datetime):
        self.set(instant)

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the clock needs an aware instant")
        self._now = instant

    def advance(self, **delta) -> None:
        self._now = self._now + timedelta(**delta)

    def now(self) -> datetime:
        return self._now


class ShiftedClock:
    """Real time, shifted so that the service starts at a chosen instant (training and demo
    workspaces: the Occitanie demo lives in June 2022, when its dossiers were alive)."""

    def __init__(self, start: datetime, *, real: Clock | None = None, origin: datetime | None = None):
        """`origin` is the real instant at which the shifted clock read `start` (default: now).
        Every process of one workspace must share it, or each would restart the clock at `start`
        and write events dated before the ones already written."""
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware instant")
        self._real = real or SystemClock()
        self._offset = start - (origin or self._real.now())

    def now(self) -> datetime:
        return self._real.now() + self._offset
