"""The API anchors the histories it writes, alone, without `usine serve` and its nightly flow: a
task of the application's lifespan anchors every `USINE_API_ANCHOR_SECONDS` (default 900 s, a
quarter of an hour; 0 turns it off) and once more at shutdown (`services.audit.anchors.anchor`,
appended to `$USINE_AUDIT_JOURNAL` when set). Only when a head moved: an idle API writes no anchor.

Why a background task and not an anchor per command: an anchor is one chain for the whole
database (its sequence number is unique); written inside each command it would serialize every
command on it — exactly what the anchors were designed to avoid (docs/audit.md). Off the command
path, a command never waits for it on PostgreSQL (the anchor reads the events with one grouped
query and writes only its own tables); on SQLite, where one transaction writes at a time, the
anchor takes its turn on the API's writer lock like one more request, for the time of that
grouped query (measured by `python -m bench.api_anchor`). What is written between two anchors is
protected by its chains, and by the next anchor (at the latest at shutdown).

Several workers (`usine api --workers N`) each run the task: two anchors at once collide on the
anchor number, the second is refused and the next round (or the other worker) covers it."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from starlette.concurrency import run_in_threadpool

log = logging.getLogger("usine.api.anchoring")
DEFAULT_EVERY_SECONDS = 900.0


def interval_from_environment() -> float:
    raw = os.environ.get("USINE_API_ANCHOR_SECONDS")
    if raw is None or not raw.strip():
        return DEFAULT_EVERY_SECONDS
    value = float(raw)
    if value < 0:
        raise ValueError("USINE_API_ANCHOR_SECONDS : un nombre de secondes positif (0 : pas d'ancrage par l'API).")
    return value


class Anchoring:
    """Anchor periodically and at shutdown; `last` is the latest anchor written (or None)."""

    def __init__(self, uow_factory, clock, *, every: float, journal: str | None = None):
        self.uow_factory = uow_factory
        self.clock = clock
        self.every = every
        self.journal = journal
        self.last: dict | None = None
        self.written = 0

    def anchor_once(self) -> dict | None:
        from services.audit.anchors import AnchorRefused, anchor

        try:
            result = anchor(self.uow_factory, self.clock, journal=self.journal, only_if_moved=True)
        except AnchorRefused as exc:
            if any(p.get("problem") == "concurrent_anchor" for p in exc.problems):
                log.info("ancrage : une autre ancre vient d'être écrite, rien à faire")
            else:
                log.error("ancrage refusé : %s — %s", exc,
                          "; ".join(f"{p.get('dossier') or ''} {p['problem']} {p.get('seq') or ''}".strip()
                                    for p in exc.problems[:10]))
            return None
        if result is None:
            return None
        self.last = result.as_dict()
        self.written += 1
        log.info("ancre n°%s : %s dossier(s), %s événement(s), %s tête(s) nouvelle(s) — %s",
                 result.seq, result.dossiers, result.events, result.changed, result.hash)
        return self.last

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await run_in_threadpool(self.anchor_once)
            except Exception:  # the database away for a moment: the next round tries again
                log.exception("ancrage périodique impossible")

    @contextlib.asynccontextmanager
    async def running(self):
        task = asyncio.create_task(self._loop(), name="usine-anchoring")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await run_in_threadpool(self.anchor_once)
            except Exception:
                log.exception("ancrage à l'arrêt impossible")
