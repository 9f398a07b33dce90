"""The one way a dossier's row is written once it exists: its state (`status`), its amounts and
whatever else changed, with its next version, under optimistic concurrency.

`write_dossiers` is called by a command for its one dossier (`services.uow.save_dossier`) and
by the set-based sweeps for a batch (`services.bulk.BatchWriter.write`): the same statements
(`UPDATE dossiers SET … , version = :new WHERE id = :id AND version = :read`), one per set of
changed columns, built once and executed for all the rows that change those columns
(executemany), rows in id order so that concurrent writers lock them in the same order.

Each statement carries the execution option `usine_dossier_write`: the test suite listens to
every UPDATE of `dossiers` (`tests/dossier_write_guard.py`, on in every test) and fails a test
during which the state or an amount was written by any other statement.

The other UPDATEs of `dossiers` write neither: `services.deadlines.refresh` (the derived
listing columns: next deadline, search text) and `services.retention` (anonymisation)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Update, bindparam, select, update

from db import models as m

DOSSIERS = m.Dossier.__table__
WRITE_OPTION = "usine_dossier_write"
# What a dossier is and owes: its state and its amounts. Written through `write_dossiers` only.
STATE_COLUMNS = frozenset({"status", "aid_total", "paid_total", "recovered_total", "cancelled_remainder",
                           "loan_outstanding", "written_off"})
WRITABLE_COLUMNS = frozenset(c.key for c in DOSSIERS.c) - {"id", "version"}


class DossierWrite(NamedTuple):
    """One dossier's change: the version it was read at, the version it is written with, and
    the columns that change (column name → value)."""
    dossier_id: int
    read_version: int
    new_version: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Unmatched:
    """The rows whose version was no longer the one read (another writer committed first):
    nothing was written to them. `count` is exact (the statements' row counts); `ids` names
    them, read back after the statements (a row another writer brought to the very version and
    values this one would have written is counted but not named: it holds what was meant)."""
    count: int = 0
    ids: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return self.count > 0


_NONE = Unmatched()
_STATEMENTS: dict[tuple[str, ...], Update] = {}


def statement_for(columns: tuple[str, ...]) -> Update:
    """The UPDATE for one set of changed columns (sorted), built once per process."""
    stmt = _STATEMENTS.get(columns)
    if stmt is None:
        unknown = set(columns) - WRITABLE_COLUMNS
        if unknown:
            raise ValueError(f"not columns of a dossier: {sorted(unknown)}")
        stmt = (update(DOSSIERS)
                .where(DOSSIERS.c.id == bindparam("b_id"), DOSSIERS.c.version == bindparam("b_read"))
                .values(version=bindparam("b_new"),
                        **{c: bindparam(f"b_{c}", type_=DOSSIERS.c[c].type) for c in columns})
                .execution_options(**{WRITE_OPTION: True}))
        _STATEMENTS[columns] = stmt
    return stmt


def _params(write: DossierWrite) -> dict[str, Any]:
    params = {f"b_{k}": v for k, v in write.values.items()}
    params["b_id"], params["b_read"], params["b_new"] = write.dossier_id, write.read_version, write.new_version
    return params


def _not_written(connection: Connection, columns: tuple[str, ...], group: list[DossierWrite]) -> list[int]:
    """The rows of `group` that do not hold what this statement wrote (read back in the same
    transaction: the rows written hold the new version and the values given). Another writer's
    commit usually brings the row to the same next version: the version alone cannot tell."""
    by_id = {w.dossier_id: w for w in group}
    rows = connection.execute(select(DOSSIERS.c.id, DOSSIERS.c.version, *(DOSSIERS.c[c] for c in columns))
                              .where(DOSSIERS.c.id.in_(list(by_id)))).all()
    return sorted(row.id for row in rows
                  if row.version != by_id[row.id].new_version
                  or any(getattr(row, c) != by_id[row.id].values[c] for c in columns))


def write_dossiers(connection: Connection, writes: Iterable[DossierWrite]) -> Unmatched:
    """Write the dossiers' changes, one statement per set of changed columns; tell which rows
    did not match their version as read (nothing written to those). The caller decides what a
    conflict means: a command's `ConcurrencyConflict`, a batch rolled back and read again."""
    writes = list(writes)
    if len(writes) == 1:
        # A command's one dossier: one statement, its rowcount tells all.
        write = writes[0]
        result = connection.execute(statement_for(tuple(sorted(write.values))), _params(write))
        return _NONE if result.rowcount == 1 else Unmatched(1, (write.dossier_id,))
    groups: dict[tuple[str, ...], list[DossierWrite]] = {}
    for write in sorted(writes, key=lambda w: w.dossier_id):
        groups.setdefault(tuple(sorted(write.values)), []).append(write)
    missed, missed_ids = 0, []
    for columns, group in groups.items():
        result = connection.execute(statement_for(columns), [_params(w) for w in group])
        if result.rowcount != len(group):
            missed += len(group) - result.rowcount
            missed_ids += _not_written(connection, columns, group)
    return Unmatched(missed, tuple(missed_ids)) if missed else _NONE


__all__ = ["DossierWrite", "STATE_COLUMNS", "Unmatched", "WRITE_OPTION", "statement_for", "write_dossiers"]
