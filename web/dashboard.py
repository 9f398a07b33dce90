"""The programme dashboard: the figures the regions publish, counted from the dossiers and their
events by `services.dashboard` (stored, recomputed every 15 minutes), shown within the user's scope.

- share of the sites diagnosed (an `accept_diagnostic` event) that handed in an action plan
  (`submit_action_plan`), its own chart with its own label;
- dossiers voted (every line, the chart's step), aid voted and paid (net of recovery orders);
- sites diagnosed, the share with an accepted plan, aid dossiers voted and companies engaged: one
  definition each, `services.kpis`' — the cards, the chart and the table say the same number;
- dossiers per company and size classes.
The programme file's `reported` figures (Nouvelle-Aquitaine's published results) are shown
beside them as published, not recomputed. The pathway figures of SPEC §11.4 (companies
diagnosed, accepted plans, aid dossiers, subsidies and loans voted, paid, outstanding, in
default) are `services.kpis`', each beside the published one where the file has it."""
from __future__ import annotations

from decimal import Decimal

from services.dashboard import ProgrammeFigures
from services.kpis import side_by_side
from states.lifecycle import STATE_LABELS, STATES
from web.charts import bar_chart, share_bar
from web.format import SIZE_LABELS, eur, number, percent


def programmes_for(actor, catalogue) -> list:
    if actor.role == "admin":
        return catalogue.all()
    regions = set(actor.regions or ())
    return [p for p in catalogue.all() if p.region in regions]


def programme_figures(stored: ProgrammeFigures, programme) -> dict:
    """What the page shows of a programme's figures as last computed (`services.dashboard`)."""
    kpis = stored.kpis
    figures = {
        "programme": programme, "computed_at": stored.computed_at, "total": stored.total,
        "by_state": stored.by_state, "diagnosed": stored.diagnosed, "with_plan": stored.with_plan,
        "share_with_plan": stored.share_with_plan, "voted": stored.voted, "aid_voted": stored.aid_voted,
        "net_paid": stored.net_paid, "companies": stored.companies, "per_company": stored.per_company,
        "sizes": stored.sizes, "kpis": kpis,
    }
    # One definition per label (SPEC §11.4, `services.kpis`): the cards, the chart's « Entreprises
    # engagées » step and the table say the same number for the same words.
    figures["engaged"] = kpis.companies_engaged
    figures["charts"] = _charts(figures)
    figures["side_by_side"] = [row | {"computed_shown": _shown(row["kind"], row["computed"]),
                                      "published_shown": _shown(row["kind"], row["published"])}
                               for row in side_by_side(kpis, programme.reported)]
    figures["has_published"] = any(row["published"] is not None for row in figures["side_by_side"])
    # The loan rows only for a programme that lends (or has lent).
    figures["has_loans"] = bool(kpis.loans_voted) or any(i.kind != "subsidy" for p in programme.phases
                                                         for i in (p.instruments or ()))
    return figures


def _shown(kind: str, value) -> str:
    if value is None:
        return "—"
    return {"number": number, "eur": eur, "percent": percent,
            "decimal": lambda v: number(v, 2)}[kind](value)


def _charts(f: dict) -> dict:
    name = f["programme"].name
    states = [(STATE_LABELS[s], f["by_state"][s], number(f["by_state"][s])) for s in STATES if s in f["by_state"]]
    steps = [("Candidatures", f["total"], number(f["total"])),
             ("Sites diagnostiqués", f["kpis"].sites_diagnosed, number(f["kpis"].sites_diagnosed)),
             ("Plans d'action déposés", f["with_plan"], number(f["with_plan"])),
             ("Dossiers votés (toutes lignes)", f["voted"], number(f["voted"])),
             ("Entreprises engagées", f["engaged"], number(f["engaged"]))]
    money = [("Aide votée", f["aid_voted"], eur(f["aid_voted"])), ("Aide versée", f["net_paid"], eur(f["net_paid"]))]
    per_company = [(f"{k} dossier{'s' if k != '1' else ''}", v, f"{number(v)} entreprise{'s' if v != 1 else ''}")
                   for k, v in f["per_company"].items()]
    order = {"sme": 0, "eti": 1, None: 2}
    sizes = [(SIZE_LABELS.get(k, k) + (" (avant éligibilité)" if k is None else ""), v, number(v))
             for k, v in sorted(f["sizes"].items(), key=lambda kv: (order.get(kv[0], 3), str(kv[0])))]
    return {
        "steps": bar_chart(f"{name} : du diagnostic au vote", steps),
        "share": share_bar(f"{name} : part des sites diagnostiqués ayant déposé un plan d'action",
                           f["share_with_plan"], percent(f["share_with_plan"]) if f["share_with_plan"] is not None else "—"),
        "money": bar_chart(f"{name} : aide votée et versée", money, alt_colour=True),
        "states": bar_chart(f"{name} : dossiers par état", states),
        "per_company": bar_chart(f"{name} : nombre de dossiers par entreprise", per_company),
        "sizes": bar_chart(f"{name} : dossiers par taille d'entreprise", sizes, alt_colour=True),
        "tables": {"steps": steps, "money": money, "states": states, "per_company": per_company, "sizes": sizes},
    }


def reported_figures(catalogue) -> list[dict]:
    """The published results carried by programme files (`reported`), as published."""
    out = []
    for p in catalogue.all():
        r = p.reported
        if r is None:
            continue
        rows = []
        if r.sites_diagnosed is not None:
            rows.append(("Sites diagnostiqués", r.sites_diagnosed, number(r.sites_diagnosed)))
        if r.aid_dossiers_voted is not None:
            rows.append(("Dossiers d'aide votés", r.aid_dossiers_voted, number(r.aid_dossiers_voted)))
        if r.companies_engaged is not None:
            rows.append(("Entreprises engagées dans des actions", r.companies_engaged, number(r.companies_engaged)))
        per_company = (Decimal(r.aid_dossiers_voted) / Decimal(r.companies_engaged)).quantize(Decimal("0.01")) \
            if r.aid_dossiers_voted and r.companies_engaged else None
        out.append({
            "programme": p, "rows": rows, "share": r.share_with_progress_plan, "per_company": per_company,
            "chart": bar_chart(f"{p.name} ({p.region}) : chiffres publiés", rows),
            "share_chart": share_bar(f"{p.name} : part des entreprises diagnostiquées engagées dans un plan de progrès",
                                     r.share_with_progress_plan, percent(r.share_with_progress_plan))
            if r.share_with_progress_plan is not None else None,
        })
    return out
