"""The key figures of a programme (SPEC §11.4), counted from the dossiers and their events, for
the dashboard — side by side with the figures the region published where the programme file
carries them (`reported`), shown as published.

- companies and sites diagnosed: dossiers whose diagnostic was accepted (an `accept_diagnostic`
  event; a site is one dossier, a company one SIREN); on a programme without a diagnostic stage
  (Pays de la Loire), the voted dossiers of its first line (diagnostic et faisabilité);
- share of diagnosed companies with an accepted plan: of those companies, the ones whose
  diagnostic dossier was voted favourably (its plan approved by the vote, SPEC §11.4);
  none on a programme without a plan;
- aid dossiers voted: the voted dossiers of the lines opened from a plan (`aid` lines) where the
  programme has some, else every voted dossier; engaged companies: those with at least one;
- subsidies voted and paid (net of recovery orders), loans voted and disbursed: a dossier's
  voted record splits subsidy and loan on a line with instruments;
- loans outstanding (in repayment or in default), in default, written off."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import distinct, func, select

from db import models as m
from rules.money import ZERO
from states.lifecycle import LOAN_STATES


@dataclass(frozen=True)
class Kpis:
    sites_diagnosed: int
    companies_diagnosed: int
    companies_with_plan: int | None
    share_with_plan: Decimal | None
    aid_dossiers_voted: int
    companies_engaged: int
    dossiers_per_engaged: Decimal | None
    subsidy_voted: Decimal
    subsidy_paid: Decimal
    loans_voted: Decimal
    loans_disbursed: Decimal
    loans_outstanding: Decimal
    loans_in_default: int
    outstanding_in_default: Decimal
    written_off: Decimal


def _ratio(a, b, places: str) -> Decimal | None:
    return (Decimal(a) / Decimal(b)).quantize(Decimal(places)) if b else None


def programme_kpis(session, programme) -> Kpis:
    pid = programme.id
    lines = programme.dossier_lines
    diagnostic_lines = [line.number for line in lines if line.shape == "diagnostic"]
    aid_lines = [line.number for line in lines if line.shape == "aid"]
    of_programme = m.Dossier.programme_id == pid

    def event_dossiers(command: str, line_numbers: list[int]):
        return (select(m.Dossier.id, m.Dossier.company_id).join(m.Event, m.Event.dossier_id == m.Dossier.id)
                .where(of_programme, m.Dossier.line.in_(line_numbers), m.Event.command == command).distinct())

    if diagnostic_lines:
        diagnosed = session.execute(event_dossiers("accept_diagnostic", diagnostic_lines)).all()
        # The plan is approved by the diagnostic dossier's favourable vote (its event).
        approved = {c for _, c in session.execute(
            select(m.Dossier.id, m.Dossier.company_id).join(m.Event, m.Event.dossier_id == m.Dossier.id)
            .where(of_programme, m.Dossier.line.in_(diagnostic_lines), m.Event.command == "record_vote",
                   m.Event.state_after == "approved").distinct())}
        companies = {c for _, c in diagnosed}
        with_plan: int | None = len(companies & approved)
    else:
        first = lines[0].number
        diagnosed = session.execute(select(m.Dossier.id, m.Dossier.company_id)
                                    .where(of_programme, m.Dossier.line == first, m.Dossier.voted_on.is_not(None))).all()
        companies = {c for _, c in diagnosed}
        with_plan = None
    voted_aid = (of_programme, m.Dossier.voted_on.is_not(None), *((m.Dossier.line.in_(aid_lines),) if aid_lines else ()))
    aid_voted = session.scalar(select(func.count()).select_from(m.Dossier).where(*voted_aid)) or 0
    engaged = session.scalar(select(func.count(distinct(m.Dossier.company_id))).where(*voted_aid)) or 0

    subsidy_voted = loans_voted = loans_disbursed = ZERO
    for voted, loan in session.execute(select(m.Dossier.voted, m.Dossier.loan)
                                       .where(of_programme, m.Dossier.voted_on.is_not(None))):
        voted = voted or {}
        if voted.get("by_instrument"):
            subsidy_voted += Decimal(voted.get("subsidy_total", "0"))
            loans_voted += Decimal(voted.get("loan_total", "0"))
        else:
            subsidy_voted += Decimal(voted.get("total", "0"))
        if loan:
            loans_disbursed += Decimal(loan["principal"])
    paid, recovered = session.execute(select(func.sum(m.Dossier.paid_total), func.sum(m.Dossier.recovered_total))
                                      .where(of_programme)).one()
    paid = Decimal(paid or ZERO) - Decimal(recovered or ZERO)
    outstanding = session.scalar(select(func.sum(m.Dossier.loan_outstanding))
                                 .where(of_programme, m.Dossier.status.in_(LOAN_STATES))) or ZERO
    in_default, default_outstanding = session.execute(
        select(func.count(), func.sum(m.Dossier.loan_outstanding))
        .where(of_programme, m.Dossier.status == "in_default")).one()
    written = session.scalar(select(func.sum(m.Dossier.written_off)).where(of_programme)) or ZERO
    return Kpis(
        sites_diagnosed=len(diagnosed), companies_diagnosed=len(companies), companies_with_plan=with_plan,
        share_with_plan=_ratio(with_plan, len(companies), "0.0001") if with_plan is not None else None,
        aid_dossiers_voted=aid_voted, companies_engaged=engaged,
        dossiers_per_engaged=_ratio(aid_voted, engaged, "0.01"),
        subsidy_voted=subsidy_voted, subsidy_paid=Decimal(paid), loans_voted=loans_voted,
        loans_disbursed=loans_disbursed, loans_outstanding=Decimal(outstanding), loans_in_default=in_default or 0,
        outstanding_in_default=Decimal(default_outstanding or ZERO), written_off=Decimal(written),
    )


def side_by_side(kpis: Kpis, reported) -> list[dict]:
    """The figures the programme file reports (`reported`), each beside the one counted here;
    `published` is None where the region published none."""
    r = reported

    def published(name):
        return getattr(r, name) if r is not None else None

    per_company = _ratio(r.aid_dossiers_voted, r.companies_engaged, "0.01") \
        if r is not None and r.aid_dossiers_voted and r.companies_engaged else None
    return [
        {"key": "sites_diagnosed", "label": "Sites diagnostiqués", "computed": kpis.sites_diagnosed,
         "published": published("sites_diagnosed"), "kind": "number"},
        {"key": "companies_diagnosed", "label": "Entreprises diagnostiquées", "computed": kpis.companies_diagnosed,
         "published": None, "kind": "number"},
        {"key": "share_with_plan", "label": "Part des entreprises diagnostiquées avec un plan accepté",
         "computed": kpis.share_with_plan, "published": published("share_with_progress_plan"), "kind": "percent"},
        {"key": "aid_dossiers_voted", "label": "Dossiers d'aide votés", "computed": kpis.aid_dossiers_voted,
         "published": published("aid_dossiers_voted"), "kind": "number"},
        {"key": "companies_engaged", "label": "Entreprises engagées", "computed": kpis.companies_engaged,
         "published": published("companies_engaged"), "kind": "number"},
        {"key": "dossiers_per_engaged", "label": "Dossiers d'aide par entreprise engagée",
         "computed": kpis.dossiers_per_engaged, "published": per_company, "kind": "decimal"},
        {"key": "subsidy_voted", "label": "Subventions votées", "computed": kpis.subsidy_voted, "published": None,
         "kind": "eur"},
        {"key": "subsidy_paid", "label": "Subventions versées", "computed": kpis.subsidy_paid, "published": None,
         "kind": "eur"},
        {"key": "loans_voted", "label": "Prêts votés", "computed": kpis.loans_voted, "published": None, "kind": "eur"},
        {"key": "loans_disbursed", "label": "Prêts versés", "computed": kpis.loans_disbursed, "published": None,
         "kind": "eur"},
        {"key": "loans_outstanding", "label": "Prêts restant dus", "computed": kpis.loans_outstanding,
         "published": None, "kind": "eur"},
        {"key": "loans_in_default", "label": "Prêts en défaut de remboursement", "computed": kpis.loans_in_default,
         "published": None, "kind": "number"},
        {"key": "outstanding_in_default", "label": "Restant dû des prêts en défaut",
         "computed": kpis.outstanding_in_default, "published": None, "kind": "eur"},
        {"key": "written_off", "label": "Prêts passés en perte", "computed": kpis.written_off, "published": None,
         "kind": "eur"},
    ]
