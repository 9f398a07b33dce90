"""The service as configured from the environment: one engine, one storage, one clock."""
from __future__ import annotations

from functools import lru_cache

from datetime import datetime

from services.clock import ShiftedClock, SystemClock
from services.config import get_settings
from services.uow import unit_of_work_factory


@lru_cache(maxsize=1)
def default_uow_factory():
    settings = get_settings()
    return unit_of_work_factory(settings.database_url, storage_dir=settings.storage_dir)


@lru_cache(maxsize=1)
def default_clock():
    start = get_settings().clock_start
    if start:
        return ShiftedClock(datetime.fromisoformat(start))
    return SystemClock()
