"""Finding dossiers, always within the actor's scope (SPEC §1).

Scope, the same rule as `services.commands.check_scope` but written as SQL so that a listing
never loads what it may not show:
- officer, head, finance, auditor: the dossiers of the programmes of their regions;
- applicant: the dossiers of its company (SIREN);
- consultant: the dossiers assigned to it (`Dossier.consultant`);
- any other role (admin, system): nothing.

Text search binds its input as a parameter and escapes LIKE wildcards and FTS5 syntax: a search
string is only ever text to look for."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    bindparam,
    column,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    true,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from db import models as m
from db.models_auth import REGIONAL_ROLES  # the roles whose accounts carry regions (one list)
from programmes import Catalogue
from rules.errors import InvalidInput
from services import keyset
from services.commands import Actor
from services.deadlines import fold_needle
from services.uow import UnitOfWork
from states.lifecycle import LOAN_STATES, STATE_LABELS, STATES

SORTS = {
    "id": m.Dossier.id, "reference": m.Dossier.reference, "state": m.Dossier.status,
    "submitted_at": m.Dossier.submitted_at, "updated_at": m.Dossier.updated_at,
    "aid_total": m.Dossier.aid_total, "company": m.Company.name,
}
MAX_LIMIT = 200


def programme_keys_for(actor: Actor, catalogue: Catalogue) -> list[tuple[str, int]]:
    regions = set(actor.regions or ())
    return [(p.id, p.version) for p in catalogue.all() if p.region in regions]


def scope_clause(actor: Actor, catalogue: Catalogue) -> ColumnElement[bool]:
    """A WHERE clause on Dossier (joined with Company) limiting rows to the actor's scope."""
    if actor.role in REGIONAL_ROLES:
        keys = programme_keys_for(actor, catalogue)
        if not keys:
            return false()
        if len(keys) == 1:
            # one programme version: equalities, which an index on (programme_id, …) reads in
            # order (an IN list is probed value by value and needs a sort on SQLite)
            return and_(m.Dossier.programme_id == keys[0][0], m.Dossier.programme_version == keys[0][1])
        return tuple_(m.Dossier.programme_id, m.Dossier.programme_version).in_(keys)
    if actor.role == "applicant":
        return m.Company.siren == actor.siren if actor.siren else false()
    if actor.role == "consultant":
        return m.Dossier.consultant == actor.consultant if actor.consultant else false()
    return false()


def in_scope(actor: Actor, dossier: m.Dossier, catalogue: Catalogue) -> bool:
    """The same rule for one loaded dossier."""
    if actor.role in REGIONAL_ROLES:
        try:
            region = catalogue.get(dossier.programme_id, dossier.programme_version).region
        except Exception:
            return False
        return region in (actor.regions or ())
    if actor.role == "applicant":
        return bool(actor.siren) and dossier.company_facts.get("siren") == actor.siren
    if actor.role == "consultant":
        return bool(actor.consultant) and dossier.consultant == actor.consultant
    return False


def programme_in_scope(actor: Actor, programme_id: str, catalogue: Catalogue) -> bool:
    """Regional staff see the council sessions of their regions' programmes."""
    if actor.role not in REGIONAL_ROLES:
        return False
    return any(pid == programme_id for pid, _ in programme_keys_for(actor, catalogue))


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The shortest search the trigram index answers: a shorter one has no trigram (the LIKE scan).
FTS_MIN_CHARS = 3
_FTS = table(m.SEARCH_FTS_TABLE, column("rowid"))


class _FoldedTextMatch(ColumnElement[bool]):
    """The same search written for each database: PostgreSQL (and any other) takes the LIKE, its
    trigram index answers it; SQLite takes the FTS5 lookup. Both are bound (and so cached) alike."""
    type = Boolean()
    inherit_cache = True
    # a condition as it is, not « … = 1 » (SQLite has no boolean type): the planner takes the IN
    _is_implicitly_boolean = True
    _traverse_internals = [("like", InternalTraversal.dp_clauseelement),
                           ("fts", InternalTraversal.dp_clauseelement)]

    def __init__(self, like: ColumnElement[bool], fts: ColumnElement[bool]) -> None:
        self.like, self.fts = like, fts


@compiles(_FoldedTextMatch)
def _compile_like(element: _FoldedTextMatch, compiler, **kw) -> str:
    return compiler.process(element.like, **kw)


@compiles(_FoldedTextMatch, "sqlite")
def _compile_fts(element: _FoldedTextMatch, compiler, **kw) -> str:
    return compiler.process(element.fts, **kw)


def fts_phrase(needle: str) -> str:
    """The needle as one FTS5 string (a phrase): between double quotes, a double quote doubled;
    whatever it holds (`*`, `OR`, `NEAR`, `-`, `:`, `^`, parentheses) is then text to find. With
    the trigram tokenizer a phrase matches where the text contains it."""
    return '"' + needle.replace('"', '""') + '"'


def text_matches(q: str) -> ColumnElement[bool]:
    """The dossiers whose reference, company name, SIREN, consultant or officer contains the
    text, case and accents ignored, in the folded `Dossier.search_text` (written by
    `services.deadlines`): one LIKE, which PostgreSQL answers from its trigram index; on SQLite
    the FTS5 trigram table (`dossiers_fts`) when the text has 3 characters or more, the LIKE
    scan otherwise."""
    needle = fold_needle(q)
    if not needle:
        return true()
    like = m.Dossier.search_text.like(f"%{escape_like(needle)}%", escape="\\")
    if len(needle) < FTS_MIN_CHARS:
        return like
    fts = m.Dossier.id.in_(select(_FTS.c.rowid).where(
        literal_column(m.SEARCH_FTS_TABLE).op("MATCH")(bindparam("fts_phrase", fts_phrase(needle), unique=True))))
    return _FoldedTextMatch(like, fts)


@dataclass(frozen=True)
class DossierQuery:
    state: str | None = None
    programme: str | None = None
    officer: str | None = None
    deadline_before: date | None = None
    q: str | None = None
    call: str | None = None
    line: int | None = None
    sort: str = "-updated_at"
    limit: int = 50
    offset: int = 0
    cursor: str | None = None


def _filters(query: DossierQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.state:
        if query.state not in STATES:
            raise ValueError(f"state : état inconnu « {query.state} » (connus : {', '.join(STATES)}).")
        where.append(m.Dossier.status == query.state)
    if query.programme:
        where.append(m.Dossier.programme_id == query.programme)
    if query.officer:
        where.append(m.Dossier.officer == query.officer)
    if query.call:
        where.append(m.Dossier.call_code == query.call)
    if query.line is not None:
        where.append(m.Dossier.line == query.line)
    if query.deadline_before is not None:
        # A deadline that is still running, on or before the day: the lapse day of an open
        # document request, or the payment deadline of a dossier still being paid.
        request_due = select(m.DocumentRequest.id).where(
            m.DocumentRequest.dossier_id == m.Dossier.id, m.DocumentRequest.status == "open",
            m.DocumentRequest.lapse_on <= query.deadline_before).exists()
        payment_due = and_(m.Dossier.status.in_(("approved", "in_payment")),
                           m.Dossier.payment_deadline_on.is_not(None),
                           m.Dossier.payment_deadline_on <= query.deadline_before)
        where.append(or_(request_due, payment_due))
    if query.q:
        where.append(text_matches(query.q))
    return where


# Beyond this many dossiers `total` is this bound and `total_capped` is true: an exact count
# would read every dossier of the filters at each page.
COUNT_CAP = 10_000
_NULLABLE_SORTS = {"aid_total"}


def _sort_keys(sort: str) -> list[keyset.Key]:
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    keys = [keyset.Key(SORTS[key], descending, key in _NULLABLE_SORTS)]
    if key != "id":
        keys.append(keyset.Key(m.Dossier.id, descending))
    return keys


def _key_values(sort: str, d: m.Dossier) -> list:
    key = sort.lstrip("-")
    first = d.company_facts["name"] if key == "company" else getattr(d, {"state": "status"}.get(key, key))
    return [first] if key == "id" else [first, d.id]


def search_dossiers(uow: UnitOfWork, actor: Actor, query: DossierQuery | None = None, **kwargs) -> dict:
    """One page of the dossiers the actor may see, with the count for the filters (exact up to
    `COUNT_CAP`). A page is the `limit` rows after (or before) the `cursor`'s row in the sort's
    order (`services.keyset`), or, without a cursor, after `offset` rows."""
    query = query or DossierQuery(**kwargs)
    sort_key = query.sort.lstrip("-")
    if sort_key not in SORTS:
        raise ValueError(f"sort : tri inconnu « {query.sort} » (connus : {', '.join(SORTS)}, préfixe « - » pour décroissant).")
    if query.programme and query.programme not in uow.catalogue.ids():
        # A typo would otherwise read as "no dossier" (programmes are public: nothing is revealed).
        raise InvalidInput("programme", f"programme : programme inconnu « {query.programme} » "
                           f"(connus : {', '.join(uow.catalogue.ids())}).", rule="unknown_programme")
    limit = max(1, min(int(query.limit), MAX_LIMIT))
    offset = max(0, int(query.offset))
    forward, values = True, None
    if query.cursor:
        values, forward = keyset.decode(query.cursor, scope=f"dossiers:{query.sort}")
    where = [scope_clause(actor, uow.catalogue), *_filters(query)]
    base = select(m.Dossier)
    if actor.role == "applicant" or sort_key == "company":
        base = base.join(m.Company, m.Dossier.company_id == m.Company.id)
    base = base.where(*where)
    counted = uow.session.scalar(select(func.count()).select_from(
        base.with_only_columns(m.Dossier.id).limit(COUNT_CAP + 1).subquery()))
    keys = _sort_keys(query.sort)
    if sort_key == "company":
        # the cursor carries the name the row shows; the sort is the company row's name
        keys[0] = keyset.Key(m.Company.name, query.sort.startswith("-"))
    if values is None and offset:
        # an offset (the API's first paging), NULLs last as the cursor pages have them
        order = [k.column.desc() if k.descending else k.column.asc() for k in keys]
        if keys[0].nullable:
            order[0] = order[0].nulls_last()
        dossiers = list(uow.session.scalars(base.order_by(*order).offset(offset).limit(limit + 1)))
        more = len(dossiers) > limit
        dossiers = dossiers[:limit]
    else:
        dossiers, more = keyset.read_page(uow.session, base, keys, values, forward, limit)
    deadlines = _open_request_deadlines(uow.session, [d.id for d in dossiers])
    scope = f"dossiers:{query.sort}"
    has_next = more if forward else True
    has_prev = (values is not None or offset > 0) if forward else more
    company_of = {}
    if sort_key == "company" and dossiers:
        company_of = dict(uow.session.execute(select(m.Company.id, m.Company.name)
                                              .where(m.Company.id.in_({d.company_id for d in dossiers}))).all())

    def cursor_of(d, forward_):
        vals = _key_values(query.sort, d)
        if sort_key == "company":
            vals[0] = company_of[d.company_id]
        return keyset.encode(vals, forward=forward_, scope=scope)

    capped = counted > COUNT_CAP
    return {"items": [dossier_row(d, uow.catalogue, deadlines.get(d.id)) for d in dossiers],
            "total": COUNT_CAP if capped else counted, "total_capped": capped, "limit": limit, "offset": offset,
            "next_cursor": cursor_of(dossiers[-1], True) if dossiers and has_next else None,
            "prev_cursor": cursor_of(dossiers[0], False) if dossiers and has_prev else None}


def _open_request_deadlines(session, ids: list[int]) -> dict[int, date]:
    """The soonest lapse day of each listed dossier's open requests: one query for the page."""
    if not ids:
        return {}
    return dict(session.execute(
        select(m.DocumentRequest.dossier_id, func.min(m.DocumentRequest.lapse_on))
        .where(m.DocumentRequest.dossier_id.in_(ids), m.DocumentRequest.status == "open")
        .group_by(m.DocumentRequest.dossier_id)).all())


def next_deadline(dossier: m.Dossier, request_deadline: date | None) -> date | None:
    candidates = [request_deadline] if request_deadline else []
    if dossier.status in ("approved", "in_payment") and dossier.payment_deadline_on:
        candidates.append(dossier.payment_deadline_on)
    if dossier.status in LOAN_STATES and dossier.loan_next_due_on:
        candidates.append(dossier.loan_next_due_on)
    return min(candidates) if candidates else None


def loan_columns(d: m.Dossier) -> dict:
    """A dossier's loan as a listing shows it, from its own columns (no query per row): the
    principal voted, and once disbursed the outstanding principal and the next unpaid due date."""
    principal = None
    for line in (d.voted or {}).get("lines", []):
        if line.get("loan"):
            principal = line["loan"]["principal"]
    if d.loan is not None:
        principal = d.loan["principal"]
    return {"loan_principal": principal,
            "loan_outstanding": None if d.loan is None or d.loan_outstanding is None else str(d.loan_outstanding),
            "loan_next_due_on": d.loan_next_due_on.isoformat() if d.loan is not None and d.loan_next_due_on else None}


def dossier_row(d: m.Dossier, catalogue: Catalogue, request_deadline: date | None = None) -> dict:
    try:
        programme = catalogue.get(d.programme_id, d.programme_version)
        region, example = programme.region, programme.is_example
    except Exception:
        region, example = None, False
    due = next_deadline(d, request_deadline)
    return {
        "id": d.id, "reference": d.reference, "programme": d.programme_id, "programme_version": d.programme_version,
        "region": region, "company": d.company_facts["name"], "siren": d.company_facts["siren"],
        "state": d.status, "state_label": STATE_LABELS[d.status], "version": d.version,
        "officer": d.officer, "consultant": d.consultant,
        "aid_total": None if d.aid_total is None else str(d.aid_total),
        "paid": str(d.paid_total - d.recovered_total),
        "next_deadline": due.isoformat() if due else None,
        "submitted_at": d.submitted_at.isoformat(), "updated_at": d.updated_at.isoformat(),
        "line": d.line, "call": d.call_code, "example": example, **loan_columns(d),
    }


def companies_in_scope(uow: UnitOfWork, actor: Actor, *, q: str | None = None, limit: int = 50,
                       offset: int = 0) -> dict:
    """The companies with at least one dossier in the actor's scope."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    visible = (select(m.Dossier.company_id).join(m.Company, m.Dossier.company_id == m.Company.id)
               .where(scope_clause(actor, uow.catalogue)))
    base = select(m.Company).where(m.Company.id.in_(visible))
    if q:
        needle = f"%{escape_like(q.strip().lower())}%"
        base = base.where(or_(func.lower(m.Company.name).like(needle, escape="\\"),
                              m.Company.siren.like(needle, escape="\\")))
    total = uow.session.scalar(select(func.count()).select_from(base.with_only_columns(m.Company.id).subquery()))
    rows = uow.session.scalars(base.order_by(m.Company.name, m.Company.id).limit(limit).offset(offset)).all()
    return {"items": [{"siren": c.siren, "name": c.name} for c in rows], "total": total,
            "limit": limit, "offset": offset}


def company_in_scope(uow: UnitOfWork, actor: Actor, siren: str) -> dict | None:
    """One company and the dossiers of it the actor may see; None when it sees none."""
    company = uow.session.scalar(select(m.Company).where(m.Company.siren == siren))
    if company is None:
        return None
    dossiers = uow.session.scalars(
        select(m.Dossier).join(m.Company, m.Dossier.company_id == m.Company.id)
        .where(m.Dossier.company_id == company.id, scope_clause(actor, uow.catalogue))
        .order_by(m.Dossier.id)).all()
    if not dossiers:
        return None
    return {"siren": company.siren, "name": company.name, "email": company.email,
            "dossiers": [dossier_row(d, uow.catalogue) for d in dossiers]}


__all__ = ["DossierQuery", "search_dossiers", "scope_clause", "in_scope", "programme_in_scope",
           "companies_in_scope", "company_in_scope", "dossier_row", "SORTS"]
