"""Keyset pagination ("seek"): a page starts after (or ends before) the sort key of the row that
ended (or started) the page shown, so that page 5 costs what page 1 costs — an OFFSET reads and
throws away every row before the page. The cursor is that key, in an opaque URL-safe token.

A sort is a list of `Key`s, the last one unique (the id), all ascending or all descending; only
the first may be NULL. NULLs sort last, ascending or descending, on every database (SQLite and
PostgreSQL disagree by default). Each statement is a range of an index read in order: the
page's position costs nothing (no OFFSET, no OR the planners cannot seek on)."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, true, tuple_

from rules.errors import InvalidInput


@dataclass(frozen=True)
class Key:
    column: object
    descending: bool = False
    nullable: bool = False


def _compare(keys: list[Key], values: list, after: bool):
    """The row value comparison (a, b, id) > (x, y, z) (or <), which both databases answer with
    an index range scan: every key of a sort runs in the same direction."""
    columns, bound = [k.column for k in keys], list(values)
    greater = after != keys[0].descending
    left, right = (tuple_(*columns), tuple_(*bound)) if len(columns) > 1 else (columns[0], bound[0])
    return left > right if greater else left < right


def _ordered(keys: list[Key], forward: bool) -> list:
    return [k.column.desc() if k.descending == forward else k.column.asc() for k in keys]


def segments(keys: list[Key], values: list | None, forward: bool = True) -> list[tuple]:
    """The (WHERE, ORDER BY) of the statements that read a page, in order: one, or two when the
    first key is nullable (its non-NULL rows, then — NULLs sort last — its NULL rows, each read
    in index order; the second only runs when the first did not fill the page)."""
    first, rest = keys[0], keys[1:]
    if any(k.nullable for k in rest) or any(k.descending != first.descending for k in rest):
        raise ValueError("keyset: only the first key may be NULL, and every key runs one way")
    if values is not None and len(values) != len(keys):
        raise InvalidInput("cursor", "cursor : curseur de page illisible (reprendre depuis la première page).",
                           rule="bad_cursor")
    if not first.nullable:
        where = true() if values is None else _compare(keys, values, forward)
        return [(where, _ordered(keys, forward))]
    present = (first.column.is_not(None), _ordered(keys, forward))
    missing = (first.column.is_(None), _ordered(rest, forward))
    if values is None:
        return [present, missing] if forward else [missing, present]
    v0 = values[0]
    if forward:
        if v0 is None:
            return [(and_(first.column.is_(None), _compare(rest, values[1:], True)), missing[1])]
        return [(and_(first.column.is_not(None), _compare(keys, values, True)), present[1]), missing]
    if v0 is None:
        return [(and_(first.column.is_(None), _compare(rest, values[1:], False)), missing[1]), present]
    return [(_compare(keys, values, False), present[1])]


def read_page(session, stmt, keys: list[Key], values: list | None, forward: bool, limit: int) -> tuple[list, bool]:
    """The page's rows in the sort's order, and whether more rows lie beyond it (in the
    direction read). `stmt` is the filtered SELECT, without ORDER BY or LIMIT."""
    rows: list = []
    parts = segments(keys, values, forward)
    if (len(parts) == 2 and values is None and forward and not keys[0].descending
            and session.get_bind().dialect.name == "postgresql"):
        # The first page on PostgreSQL: one statement. Its B-tree indexes keep NULLs last when
        # ascending, so « ORDER BY first NULLS LAST, … » is still one index read in order — and
        # a page the first segment does not fill (a search, a small scope) reads the dossiers
        # without a first key in the same statement instead of filtering the scope a second time
        # (a second trigram lookup, for a search). SQLite keeps NULLs first in its indexes: two.
        parts = [(true(), [keys[0].column.asc().nulls_last(), *_ordered(keys[1:], True)])]
    for where, order in parts:
        rows += session.scalars(stmt.where(where).order_by(*order).limit(limit + 1 - len(rows))).all()
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    return rows, more


def _plain(value):
    if value is None or isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    raise TypeError(f"cursor value {value!r}")


def _typed(value):
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "t":
            return datetime.fromisoformat(raw)
        if tag == "d":
            return date.fromisoformat(raw)
        if tag == "n":
            return Decimal(raw)
    if value is None or isinstance(value, (int, str)):
        return value
    raise ValueError(value)


def encode(values: list, *, forward: bool, scope: str = "") -> str:
    """The token of a cursor: the key values, the direction, and the sort it belongs to (a
    cursor of another sort or listing is refused, not misread)."""
    body = json.dumps({"k": [_plain(v) for v in values], "f": forward, "s": scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(token: str, *, scope: str = "") -> tuple[list, bool]:
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if body.get("s", "") != scope:
            raise ValueError("scope")
        return [_typed(v) for v in body["k"]], bool(body["f"])
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor", "cursor : curseur de page illisible ou d'un autre tri "
                           "(reprendre depuis la première page).", rule="bad_cursor") from None


__all__ = ["Key", "segments", "read_page", "encode", "decode"]
