"""The programme dashboard's figures (tableau de bord): counted from the dossiers and their
events, stored per programme, and read back by the page.

Counting them scans the programme (5.7 s at 100 000 dossiers on PostgreSQL, linear in the number
of dossiers), so a page view does not count: it reads the figures as last computed, one row per
programme (`dashboard_figures`), and says when they were computed. They are computed

- by the `refresh-dashboard` flow, every 15 minutes (`workflows.deployments.SCHEDULES`), and by
  `usine dashboard refresh`: at most that old, then, while the flows run;
- by the page itself for a programme never computed yet (a new programme, a fresh database):
  that first view pays the count once and stores it.

What is counted (one definition per figure; the pathway figures of SPEC §11.4 are
`services.kpis`'):
- dossiers, by state, by size class, per company; sites diagnosed (an `accept_diagnostic`
  event) and those that handed in an action plan (`submit_action_plan`);
- dossiers voted (every line), aid voted and paid (net of recovery orders), companies."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterable

from sqlalchemy import case, distinct, func, select
from sqlalchemy.exc import IntegrityError

from db import models as m
from db.models_dashboard import DashboardFigures
from rules.money import ZERO
from services.clock import Clock
from services.kpis import Kpis, programme_kpis
from services.uow import UnitOfWork

# How often the flow recomputes them (the schedule of `refresh-dashboard`), said on the page.
REFRESH_MINUTES = 15
_MILESTONES = ("accept_diagnostic", "submit_action_plan")
# JSON keys are strings: the size class of a dossier not yet declared eligible (None) is stored so.
_NO_SIZE = "-"


@dataclass(frozen=True)
class ProgrammeFigures:
    programme_id: str
    computed_at: datetime
    total: int
    by_state: dict[str, int]
    diagnosed: int
    with_plan: int
    share_with_plan: Decimal | None
    voted: int
    aid_voted: Decimal
    net_paid: Decimal
    companies: int
    per_company: dict[str, int]
    sizes: dict[str | None, int]
    kpis: Kpis

    def as_json(self) -> dict:
        return {
            "total": self.total, "by_state": self.by_state, "diagnosed": self.diagnosed,
            "with_plan": self.with_plan, "share_with_plan": _text(self.share_with_plan), "voted": self.voted,
            "aid_voted": str(self.aid_voted), "net_paid": str(self.net_paid), "companies": self.companies,
            "per_company": self.per_company,
            "sizes": {(_NO_SIZE if k is None else k): v for k, v in self.sizes.items()},
            "kpis": {k: _text(v) if isinstance(v, Decimal) else v for k, v in asdict(self.kpis).items()},
        }

    @classmethod
    def from_json(cls, programme_id: str, computed_at: datetime, data: dict) -> "ProgrammeFigures":
        decimals = {f.name for f in fields(Kpis) if "Decimal" in str(f.type)}
        kpis = Kpis(**{k: (_decimal(v) if k in decimals else v) for k, v in data["kpis"].items()})
        return cls(
            programme_id=programme_id, computed_at=computed_at, total=data["total"], by_state=data["by_state"],
            diagnosed=data["diagnosed"], with_plan=data["with_plan"],
            share_with_plan=_decimal(data["share_with_plan"]), voted=data["voted"],
            aid_voted=Decimal(data["aid_voted"]), net_paid=Decimal(data["net_paid"]), companies=data["companies"],
            per_company=data["per_company"],
            sizes={(None if k == _NO_SIZE else k): v for k, v in data["sizes"].items()}, kpis=kpis)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(value)


def count_figures(session, programme, now: datetime) -> ProgrammeFigures:
    """The programme's figures counted now (a pass over its dossiers and milestone events)."""
    pid = programme.id
    where = m.Dossier.programme_id == pid
    voted_now = m.Dossier.voted_on.is_not(None)
    total, voted, aid_voted, paid, recovered, companies = session.execute(select(
        func.count(), func.count(m.Dossier.voted_on),
        func.sum(case((voted_now, m.Dossier.aid_total), else_=None)),
        func.sum(m.Dossier.paid_total), func.sum(m.Dossier.recovered_total),
        func.count(distinct(m.Dossier.company_id))).where(where)).one()
    by_state = dict(session.execute(select(m.Dossier.status, func.count()).where(where)
                                    .group_by(m.Dossier.status)).all())
    # Dossiers with each milestone event, read from the index on `events.command`.
    milestones = dict(session.execute(
        select(m.Event.command, func.count(distinct(m.Event.dossier_id)))
        .join(m.Dossier, m.Event.dossier_id == m.Dossier.id)
        .where(where, m.Event.command.in_(_MILESTONES)).group_by(m.Event.command)).all())
    diagnosed, with_plan = milestones.get("accept_diagnostic", 0), milestones.get("submit_action_plan", 0)
    per_company = select(m.Dossier.company_id, func.count().label("n")).where(where) \
        .group_by(m.Dossier.company_id).subquery()
    buckets = {"1": 0, "2": 0, "3": 0, "4 ou plus": 0}
    for n, count in session.execute(select(per_company.c.n, func.count()).group_by(per_company.c.n)):
        buckets["4 ou plus" if n >= 4 else str(n)] += count
    sizes = dict(session.execute(select(m.Dossier.size_class, func.count()).where(where)
                                 .group_by(m.Dossier.size_class)).all())
    share = (Decimal(with_plan) / Decimal(diagnosed)).quantize(Decimal("0.0001")) if diagnosed else None
    return ProgrammeFigures(
        programme_id=pid, computed_at=now, total=total or 0, by_state=by_state, diagnosed=diagnosed,
        with_plan=with_plan, share_with_plan=share, voted=voted or 0, aid_voted=Decimal(aid_voted or ZERO),
        net_paid=Decimal(paid or ZERO) - Decimal(recovered or ZERO), companies=companies or 0,
        per_company=buckets, sizes=sizes, kpis=programme_kpis(session, programme))


def _store(session, figures: ProgrammeFigures) -> None:
    row = session.get(DashboardFigures, figures.programme_id)
    if row is None:
        session.add(DashboardFigures(programme_id=figures.programme_id, computed_at=figures.computed_at,
                                     figures=figures.as_json()))
    else:
        row.computed_at, row.figures = figures.computed_at, figures.as_json()


@dataclass(frozen=True)
class RefreshReport:
    computed_at: datetime
    programmes: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"computed_at": self.computed_at.isoformat(), "programmes": list(self.programmes)}


def refresh(*, uow_factory: Callable[[], UnitOfWork], clock: Clock,
            programme_ids: Iterable[str] | None = None) -> RefreshReport:
    """Count and store the figures of every programme of the catalogue (or of those named), each
    programme in its own transaction: a failure keeps the programmes already stored."""
    now = clock.now()
    done = []
    with uow_factory() as uow:
        programmes = [p for p in uow.catalogue.all() if programme_ids is None or p.id in set(programme_ids)]
    for programme in programmes:
        with uow_factory() as uow:
            _store(uow.session, count_figures(uow.session, programme, now))
            uow.commit()
        done.append(programme.id)
    return RefreshReport(now, tuple(done))


def figures_of(uow: UnitOfWork, programmes: list, clock: Clock) -> list[ProgrammeFigures]:
    """The figures of these programmes as last stored (one statement); a programme never computed
    is counted now and stored in this unit of work (committed here)."""
    ids = [p.id for p in programmes]
    stored = {row.programme_id: row for row in uow.session.scalars(
        select(DashboardFigures).where(DashboardFigures.programme_id.in_(ids)))} if ids else {}
    out, counted = [], False
    for programme in programmes:
        row = stored.get(programme.id)
        if row is None:
            figures = count_figures(uow.session, programme, clock.now())
            _store(uow.session, figures)
            counted = True
        else:
            figures = ProgrammeFigures.from_json(row.programme_id, row.computed_at, row.figures)
        out.append(figures)
    if counted:
        try:
            uow.commit()
        except IntegrityError:
            # Another first view stored the same programme's figures at the same moment: theirs stay.
            uow.rollback()
    return out


__all__ = ["REFRESH_MINUTES", "ProgrammeFigures", "RefreshReport", "count_figures", "figures_of", "refresh"]
