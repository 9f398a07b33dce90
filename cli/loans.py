"""`usine loans schedule|disburse|repay` and `usine company`: a dossier's loan (SPEC §11.3) and a
company's pathway (SPEC §11.4), in French. Thin shells over `services.loans` and
`services.pathways`; every output about a dossier under an example programme says so first."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import typer

from rules import french
from rules.french import euros

loans_app = typer.Typer(help="Prêts : échéancier, versement, remboursements.", no_args_is_help=True)
FINANCE = "service financier (ligne de commande)"


def _day(value: str | date) -> str:
    return french.day(date.fromisoformat(value) if isinstance(value, str) else value)


def _rate(value) -> str:
    return french.percent(Decimal(value), 2)


def _fail(message: str, code: int = 1):
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _dossier(uow, key: str):
    from rules.errors import NotFound

    try:
        return uow.dossier(int(key)) if key.isdigit() else uow.dossier_by_reference(key)
    except NotFound:
        _fail(f"Dossier introuvable : {key}.")


def _header(uow, dossier) -> None:
    from programmes import EXAMPLE_NOTICE

    programme = uow.catalogue.get(dossier.programme_id, dossier.programme_version)
    if programme.is_example:
        typer.echo(f"« {EXAMPLE_NOTICE} »")
    typer.echo(f"Dossier {dossier.reference} — {dossier.company_facts['name']} — {programme.name}, "
               f"ligne « {programme.line(dossier.line).name} »")


def _status_lines(loan: dict) -> list[str]:
    paid = f"remboursé {euros(loan['repaid'])}, intérêts payés {euros(loan['interest_paid'])}"
    if "written_off" in loan:
        return [f"Capital non remboursé, passé en perte : {euros(loan['written_off'])} ({paid})",
                "Aucune échéance restante : le prêt est passé en perte."]
    out = [f"Capital restant dû : {euros(loan['outstanding'])} ({paid})"]
    due = loan.get("next_due")
    out.append(f"Prochaine échéance : {_day(due['date'])} — capital {euros(due['principal'])}, "
               f"intérêts {euros(due['interest'])}" if due else "Aucune échéance restante.")
    return out


def _run(key: str, command, **kwargs) -> None:
    """One loan command as finance: its outcome in French, or the refusal (exit 1)."""
    from rules.errors import ConcurrencyConflict, RuleViolation
    from services.commands import Actor
    from services.runtime import default_clock, default_uow_factory
    from states.lifecycle import STATE_LABELS

    factory = default_uow_factory()
    with factory() as uow:
        dossier = _dossier(uow, key)
        did = dossier.id
        _header(uow, dossier)
    try:
        with factory() as uow:
            outcome = command(uow=uow, clock=default_clock(), actor=Actor(FINANCE, "finance"), dossier_id=did, **kwargs)
    except RuleViolation as exc:
        _fail(f"Refusé ({exc.rule}{', ' + exc.field if exc.field else ''}) : {exc.message}")
    except ConcurrencyConflict as exc:
        _fail(str(exc))
    typer.echo(f"État du dossier : {STATE_LABELS[outcome.state]}")
    for line in _status_lines(outcome.details["loan"]):
        typer.echo(line)


@loans_app.command("schedule")
def schedule(dossier: str = typer.Argument(..., help="Référence ou identifiant du dossier")):
    """The loan's schedule (échéancier) as drawn at disbursement, and what is paid of it."""
    from services.loans import loan_figures, plan_of, repayments_of, voted_loan
    from services.runtime import default_uow_factory

    with default_uow_factory()() as uow:
        d = _dossier(uow, dossier)
        _header(uow, d)
        if d.loan is None:
            terms = voted_loan(d)
            if terms is None:
                _fail("Aucun prêt n'a été voté pour ce dossier.")
            _fail(f"Prêt voté de {euros(terms['principal'])}, pas encore versé : l'échéancier part du jour du versement.")
        plan = plan_of(d)
        figures = loan_figures(uow.session, d)
        repaid = sum((r.amount for r in repayments_of(uow.session, d.id)), Decimal("0"))
        loan = dict(d.loan)
    typer.echo(f"Prêt de {euros(loan['principal'])} au taux annuel de {_rate(loan['annual_rate'])}, versé le "
               f"{_day(loan['disbursed_on'])} : différé de {loan['deferral_months']} mois, "
               f"{loan['instalments']} échéances d'amortissement trimestrielles")
    typer.echo("")
    header = f"{'N°':>3}  {'Échéance':<10}  {'Capital':>15}  {'Intérêts':>13}  {'Montant':>15}  {'Restant dû après':>16}"
    typer.echo(header)
    typer.echo("-" * len(header))
    for i in plan:
        typer.echo(f"{i.number:>3}  {french.day(i.due_on)}  {euros(i.principal):>15}  {euros(i.interest):>13}  "
                   f"{euros(i.amount):>15}  {euros(i.outstanding_after):>16}")
    typer.echo("-" * len(header))
    typer.echo(f"Total : capital {euros(sum((i.principal for i in plan), Decimal('0')))}, intérêts "
               f"{euros(sum((i.interest for i in plan), Decimal('0')))} ; {len(plan)} échéance(s)")
    typer.echo(f"Reçu à ce jour : {euros(repaid)}")
    for line in _status_lines(figures):
        typer.echo(line)


@loans_app.command("disburse")
def disburse(dossier: str = typer.Argument(..., help="Référence ou identifiant du dossier")):
    """Finance disburses the voted principal (once): the schedule starts today."""
    from services.loans import disburse_loan

    _run(dossier, disburse_loan)
    typer.echo("Prêt versé ; l'échéancier est envoyé à l'entreprise avec le courrier de versement.")


@loans_app.command("repay")
def repay(dossier: str = typer.Argument(..., help="Référence ou identifiant du dossier"),
          amount: str = typer.Option(..., "--amount", help="Montant reçu en euros, ex. 2030.00"),
          received_on: str = typer.Option(..., "--received-on", help="Jour de réception (AAAA-MM-JJ)")):
    """Finance records a repayment received (oldest instalment first, interest before principal)."""
    from services.loans import record_repayment

    _run(dossier, record_repayment, amount=amount, received_on=received_on)
    typer.echo(f"Remboursement de {euros(amount)} reçu le {_day(received_on)} enregistré.")


def company(siren: str = typer.Argument(..., help="SIREN de l'entreprise (9 chiffres)")):
    """A company's pathway: every dossier, its state, aid, paid, loan outstanding, and de minimis."""
    from programmes import EXAMPLE_NOTICE
    from rules.calendar import paris_date
    from rules.errors import RuleViolation
    from services.pathways import company_pathway
    from services.runtime import default_clock, default_uow_factory

    on = paris_date(default_clock().now())
    try:
        with default_uow_factory()() as uow:
            p = company_pathway(uow, siren.replace(" ", ""), on=on)
    except RuleViolation as exc:
        _fail(exc.message)
    if any(d["example"] for d in p["dossiers"]):
        typer.echo(f"« {EXAMPLE_NOTICE} »")
    typer.echo(f"{p['name']} (SIREN {p['siren']}) — {len(p['dossiers'])} dossier(s)")
    typer.echo("")
    for d in p["dossiers"]:
        aid = d["aid"] or {}
        parts = [f"{label} {euros(aid[key])}" for key, label in (("subsidy", "subvention"), ("loan", "prêt"))
                 if key in aid] or ([f"aide {euros(aid['total'])}"] if "total" in aid else ["aide non encore calculée"])
        typer.echo(f"{d['reference']:<16} {d['programme']} — {d['line']}" + (f" — appel {d['call']}" if d["call"] else ""))
        loan = d["loan"]
        owed = ("" if not loan or loan["disbursed"] == "0.00"
                else f" ; prêt passé en perte {euros(loan['written_off'])}" if "written_off" in loan
                else f" ; prêt restant dû {euros(loan['outstanding'])}")
        typer.echo(f"{'':<16} {d['state_label']} ; {', '.join(parts)} ; versé {euros(d['paid'])}{owed}")
        if d["cites"]:
            typer.echo(f"{'':<16} cite le dossier {d['cites']}")
        if d["plan"]:
            typer.echo(f"{'':<16} met en œuvre le plan du dossier {d['plan']}, action(s) "
                       f"{', '.join(f'n°{n}' for n in d['actions'])}")
        if d["plan_actions"]:
            typer.echo(f"{'':<16} plan de progrès : {len(d['plan_actions'])} action(s), budget "
                       f"{euros(sum((Decimal(a['budget']) for a in d['plan_actions']), Decimal('0')))}")
    typer.echo("")
    typer.echo(f"Prêts restant dus : {euros(p['loans_outstanding'])}")
    if Decimal(p["loans_written_off"]):
        typer.echo(f"Prêts passés en perte : {euros(p['loans_written_off'])}")
    dm = p["de_minimis"]
    typer.echo(f"De minimis au {french.day(on)} (règlement {dm['regulation']}) : {euros(dm['used'])} comptés sur "
               f"{euros(dm['ceiling'])}, reste {euros(dm['remaining'])}")


def register(app: typer.Typer) -> None:
    app.add_typer(loans_app, name="loans")
    app.command("company")(company)
