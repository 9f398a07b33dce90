"""Keyset pagination ("seek"): a page starts after (or ends before) the sort key of the row that
ended (or started) the page shown, so that page 5 costs what page 1 costs — an OFFSET reads and
throws away every row before the page. The cursor is that key, in an opaque URL-safe token.

A sort is a list of `Key`s, the last one unique (the id). NULLs sort last, ascending or
descending, on every database (SQLite and PostgreSQL disagree by default)."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, false, or_, true

from rules.errors import InvalidInput


@dataclass(frozen=True)
class Key:
    column: object
    descending: bool = False
    nullable: bool = False


def order_by(keys: list[Key], forward: bool = True) -> list:
    """ORDER BY for the page: in the sort's order forward, reversed to read a previous page."""
    out = []
    for k in keys:
        descending = k.descending != (not forward)
        expr = k.column.desc() if descending else k.column.asc()
        if k.nullable:
            expr = expr.nulls_last() if forward else expr.nulls_first()
        out.append(expr)
    return out


def _beyond(k: Key, v):
    """Rows strictly after value v in the sort's (forward) order, for this key alone."""
    if v is None:
        return false()  # NULLs are last: nothing after them
    cmp = k.column < v if k.descending else k.column > v
    return or_(cmp, k.column.is_(None)) if k.nullable else cmp


def _before(k: Key, v):
    if v is None:
        return k.column.is_not(None) if k.nullable else false()
    return k.column > v if k.descending else k.column < v


def _equal(k: Key, v):
    return k.column.is_(None) if v is None else k.column == v


def seek(keys: list[Key], values: list, forward: bool = True):
    """WHERE clause: rows after `values` (forward) or before them (backward), lexicographically."""
    if len(values) != len(keys):
        raise InvalidInput("cursor", "cursor : curseur de page illisible (reprendre depuis la première page).",
                           rule="bad_cursor")
    alternatives = []
    for i, k in enumerate(keys):
        step = _beyond(k, values[i]) if forward else _before(k, values[i])
        alternatives.append(and_(*[_equal(keys[j], values[j]) for j in range(i)], step))
    return or_(*alternatives) if alternatives else true()


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


__all__ = ["Key", "order_by", "seek", "encode", "decode"]
