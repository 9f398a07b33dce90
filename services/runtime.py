"""The service as configured from the environment: one engine, one storage, one clock."""
from __future__ import annotations

from functools import lru_cache

from services.clock import SystemClock
from services.config import get_settings
from services.uow import unit_of_work_factory


@lru_cache(maxsize=1)
def default_uow_factory():
    settings = get_settings()
    return unit_of_work_factory(settings.database_url, storage_dir=settings.storage_dir)


def default_clock():
    return SystemClock()
