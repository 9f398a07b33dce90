"""The daily anchoring of every dossier's hash-chain head (services.audit.anchors): a thin
Prefect flow; the flows room schedules it (e.g. cron "15 0 * * *", Europe/Paris)."""
from __future__ import annotations

import os

from prefect import flow, get_run_logger


@flow(name="audit-anchor", retries=1, retry_delay_seconds=60)
def anchor_history(journal: str | None = None, uow_factory=None, clock=None) -> dict:
    """Anchor the heads that moved since the last anchor. Refused (the run fails, loudly) when
    the history already anchored no longer holds: anchoring it would launder the damage."""
    from services.audit.anchors import anchor
    from services.runtime import default_clock, default_uow_factory

    result = anchor(uow_factory or default_uow_factory(), clock or default_clock(),
                    journal=journal or os.environ.get("USINE_AUDIT_JOURNAL") or None)
    try:
        log = get_run_logger()
    except Exception:  # called outside a flow run (`anchor_history.fn(...)`)
        import logging
        log = logging.getLogger("usine.audit")
    log.info("ancre n°%s : %s dossier(s), %s événement(s), %s tête(s) nouvelle(s) — %s",
                          result.seq, result.dossiers, result.events, result.changed, result.hash)
    return result.as_dict()
