"""The service as configured from the environment: one engine, one storage, one clock."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from services.clock import ShiftedClock, SystemClock
from services.config import get_settings
from services.uow import unit_of_work_factory


@lru_cache(maxsize=1)
def default_uow_factory():
    settings = get_settings()
    return unit_of_work_factory(settings.database_url, storage_dir=settings.storage_dir)


@lru_cache(maxsize=1)
def default_clock():
    """The workspace's clock. A demo or training workspace (USINE_CLOCK_START) records in
    `<var>/clock.json` the real instant its clock started, once: the API, the flows and the CLI
    of that workspace then share one clock that never goes back, across processes and restarts
    (and the CLI follows it even without the variable)."""
    settings = get_settings()
    record = Path(settings.var_dir) / "clock.json"
    start = settings.clock_start
    saved = json.loads(record.read_text("utf-8")) if record.exists() else None
    if start:
        if saved is None or saved.get("start") != start:
            saved = {"start": start, "origin": datetime.now(timezone.utc).isoformat()}
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(saved), "utf-8")
    if saved:
        return ShiftedClock(datetime.fromisoformat(saved["start"]), origin=datetime.fromisoformat(saved["origin"]))
    return SystemClock()
