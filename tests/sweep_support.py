"""Dossiers for the sweep, delivery and flow tests, made through the real commands."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from db import models as m
from rules.identifiers import luhn_valid
from services import commands
from services.audit.verify import verify_dossier

CANDIDACY_WITHOUT_TAX_CERTIFICATE = ["kbis", "financial_statement", "social_certificate", "rib",
                                     "de_minimis_attestation", "consultant_quote"]


def siren_for(n: int) -> str:
    """A valid SIREN (Luhn) of its own for company n."""
    base = f"7{n:07d}"
    for check in range(10):
        if luhn_valid(base + str(check)):
            return base + str(check)
    raise AssertionError("unreachable")


def company(n: int, **overrides) -> dict:
    return {"siren": siren_for(n), "name": f"Atelier {n} SAS", "employees": 45, "equity": "200000.00",
            "region": "Occitanie", "first_fy_months": 24, "in_difficulty": False, "tax_social_up_to_date": True,
            "activity": "industrial", "email": f"contact@atelier-{n}.example.fr", **overrides}


def run(uow_factory, clock, at: str, fn, actor, **kwargs):
    clock.set(datetime.fromisoformat(at))
    with uow_factory() as uow:
        return fn(uow=uow, clock=clock, actor=actor, **kwargs)


def dossiers_with_open_request(uow_factory, clock, actors, *, count: int, requested_at: str, first: int = 1,
                               submitted_at: str = "2021-02-22T10:00:00+01:00", one_company: bool = False) -> list[int]:
    """`count` dossiers whose officer asked for the tax certificate at `requested_at` (golden
    case 9), each of its own company (or all of company `first`)."""
    ids = []
    for n in range(first, first + count):
        out = run(uow_factory, clock, submitted_at, commands.submit_candidacy, actors["applicant"],
                  programme_id="occitanie-prif", company=company(first if one_company else n), de_minimis_prior=[],
                  documents=CANDIDACY_WITHOUT_TAX_CERTIFICATE)
        run(uow_factory, clock, submitted_at.replace("T10", "T11"), commands.take_for_review, actors["officer"],
            dossier_id=out.dossier_id)
        run(uow_factory, clock, requested_at, commands.request_documents, actors["officer"],
            dossier_id=out.dossier_id, kinds=["tax_certificate"])
        ids.append(out.dossier_id)
    return ids


def count_notifications(uow_factory, kind: str | None = None) -> int:
    with uow_factory() as uow:
        stmt = select(func.count()).select_from(m.Notification)
        if kind:
            stmt = stmt.where(m.Notification.kind == kind)
        return uow.session.scalar(stmt)


def notifications(uow_factory, kind: str | None = None) -> list[m.Notification]:
    with uow_factory() as uow:
        stmt = select(m.Notification).order_by(m.Notification.id)
        if kind:
            stmt = stmt.where(m.Notification.kind == kind)
        rows = list(uow.session.scalars(stmt))
        for row in rows:
            uow.session.expunge(row)
        return rows


def events(uow_factory, dossier_id: int) -> list[m.Event]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(m.Event).where(m.Event.dossier_id == dossier_id).order_by(m.Event.seq)))
        for row in rows:
            uow.session.expunge(row)
        return rows


def every_history_verifies(uow_factory) -> bool:
    with uow_factory() as uow:
        ids = uow.session.scalars(select(m.Dossier.id)).all()
        return all(verify_dossier(uow.session, i).ok for i in ids)


def dossier(uow_factory, dossier_id: int) -> m.Dossier:
    with uow_factory() as uow:
        d = uow.dossier(dossier_id)
        uow.session.expunge(d)
        return d
