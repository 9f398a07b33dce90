"""The work queue as a file (CSV, XLSX, ODS): the screen's filters (`web.queue.queue_filters`,
the one reading of the query string) and order, every dossier of
them — not only the page — read in bounded keyset batches (`services.keyset`, the queue's own
index order), with the screen's columns and French headers (the lines the screen writes inside
a cell — SIREN, call, line, the deadline's nature — as columns of their own)."""
from __future__ import annotations

from typing import Iterator

from services import keyset
from services.commands import Actor
from services.people import display_names
from services.queries import aid_shown
from services.table_exports import Column
from states.lifecycle import STATE_LABELS
from web.queue import DEADLINE_KINDS, QUEUE_ORDER, QueueFilters, queue_statement

BATCH = 500
COLUMNS = (Column("Référence", width=17), Column("Entreprise", width=32), Column("SIREN", width=11), Column("Appel"),
           Column("Ligne d'aide", width=28), Column("État", width=24), Column("Prochaine échéance", "date"),
           Column("Nature de l'échéance", width=40), Column("Instruction", width=22), Column("Aide", "money"))


def queue_rows(uow, actor: Actor, f: QueueFilters, batch: int = BATCH) -> Iterator[list]:
    """Every dossier of the queue, in the screen's order, `batch` at a time (one keyset page a
    statement; the session is emptied between batches so memory stays bounded)."""
    base = queue_statement(actor, uow.catalogue, f)
    values = None
    while True:
        dossiers, more = keyset.read_page(uow.session, base, QUEUE_ORDER, values, True, batch)
        people = display_names(uow.session, [d.officer for d in dossiers])
        for d in dossiers:
            programme = uow.catalogue.get(d.programme_id, d.programme_version)
            line = f"{d.line} — {programme.line(d.line).name}" if d.line and len(programme.dossier_lines) > 1 else None
            kind = d.next_deadline_kind if d.next_deadline_at is not None else None
            yield [d.reference, d.company_facts["name"], d.company_facts.get("siren"), d.call_code, line,
                   STATE_LABELS[d.status], d.next_deadline_at, DEADLINE_KINDS.get(kind) if kind else None,
                   people.get(d.officer, d.officer) if d.officer else None,
                   aid_shown(d)]
        if not more or not dossiers:
            return
        last = dossiers[-1]
        values = [last.next_deadline_at, last.submitted_at, last.id]
        uow.session.expunge_all()
