"""`usine`: the command line. Thin shells over the services."""
from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import typer

app = typer.Typer(help="Usine — dossiers d'aide « Industrie du Futur ».", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Base de données.", no_args_is_help=True)
scenario_app = typer.Typer(help="Scénarios : la vie d'un dossier écrite comme des données.", no_args_is_help=True)
dossier_app = typer.Typer(help="Dossiers.", no_args_is_help=True)
programme_app = typer.Typer(help="Programmes (fichiers versionnés).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(scenario_app, name="scenario")
app.add_typer(dossier_app, name="dossier")
app.add_typer(programme_app, name="programmes")


def _out(obj) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@db_app.command("upgrade")
def db_upgrade(url: str = typer.Option(None, help="URL SQLAlchemy (défaut : USINE_DATABASE_URL)")):
    """Apply the Alembic migrations."""
    from db.migrate import upgrade
    from services.config import get_settings

    target = url or get_settings().database_url
    upgrade(target)
    from services.programme_sync import sync_programmes
    from services.runtime import default_clock
    from services.uow import unit_of_work_factory

    factory = unit_of_work_factory(target)
    with factory() as uow:
        # The workspace's clock (a demo's lives in 2022): a version is not recorded after the
        # dossiers that were submitted under it.
        added = sync_programmes(uow=uow, clock=default_clock())
        # People read names, not the files' keys (« occitanie-prif@3 »).
        named = {p.key: f"{p.name} (version {p.version})" for p in uow.catalogue.all()}
    factory.engine.dispose()
    typer.echo(f"Base à jour : {target}"
               + (f" — programmes enregistrés : {' ; '.join(named[key] for key in added)}" if added else ""))


@app.command("states")
def states(format: str = typer.Option("mermaid", "--format", help="mermaid ou json")):
    """Print the dossier lifecycle (state chart)."""
    from states import lifecycle

    if format == "mermaid":
        typer.echo(lifecycle.mermaid())
    elif format == "json":
        _out([{"trigger": t.trigger, "source": list(t.source), "dest": t.dest, "roles": list(t.roles),
               "guards": list(t.guards), "label": t.label} for t in lifecycle.rows()])
    else:
        typer.echo("--format : mermaid ou json", err=True)
        raise typer.Exit(2)


@scenario_app.command("run")
def scenario_run(file: Path = typer.Argument(..., help="Fichier JSON du scénario")):
    """Play a scenario on a fresh database; prints one JSON object. Exit 0 ok, 1 failed, 2 invalid."""
    from services.scenario import ScenarioFileError, run_file

    if not file.exists():
        typer.echo(json.dumps({"error": {"where": "fichier", "message": f"{file} introuvable"}}, ensure_ascii=False))
        raise typer.Exit(2)
    try:
        result = run_file(file)
    except ScenarioFileError as exc:
        typer.echo(json.dumps({"error": {"where": exc.where, "message": exc.message}}, ensure_ascii=False))
        raise typer.Exit(2)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    raise typer.Exit(0 if result["expectations"]["failed"] == 0 else 1)


@programme_app.command("list")
def programmes_list():
    """The programme versions Usine knows, with their status (complete or with unknown figures)."""
    from programmes import default_catalogue

    _out([{"id": p.id, "version": p.version, "name": p.name, "region": p.region, "status": p.status,
           "hash": p.content_hash} for p in default_catalogue().all()])


@programme_app.command("check")
def programmes_check(path: Path):
    """Validate one programme file (names the field and the reason when it is wrong)."""
    from programmes import ProgrammeFileError, load_programme_file

    try:
        p = load_programme_file(path)
    except ProgrammeFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    typer.echo(f"{path.name} : valide ({p.key}, {p.status})")


def _count_dossiers(uow, *, state: str | None, programme: str | None) -> int:
    """How many dossiers `services.queries.list_dossiers` would list without a limit."""
    from sqlalchemy import func, select

    from db import models as m

    q = select(func.count()).select_from(m.Dossier)
    if state:
        q = q.where(m.Dossier.status == state)
    if programme:
        q = q.where(m.Dossier.programme_id == programme)
    return uow.session.scalar(q)


def listing_note(shown: int, offset: int, total: int) -> str | None:
    """The line saying a listing is cut (None when it shows everything from `offset` on)."""
    if offset + shown >= total:
        return None
    if offset == 0:
        return f"{shown} premiers dossiers sur {total} — --limit pour plus"
    return f"dossiers {offset + 1} à {offset + shown} sur {total} — --limit / --offset pour les autres"


@dossier_app.command("list")
def dossier_list(state: str = typer.Option(None, help="Seulement cet état (ex. ready_for_vote)"),
                 programme: str = typer.Option(None, help="Seulement ce programme (ex. occitanie-prif)"),
                 limit: int = typer.Option(50, "--limit", min=1, help="Nombre de dossiers affichés au plus"),
                 offset: int = typer.Option(0, "--offset", min=0, help="Sauter les N premiers")):
    """The dossiers, by id; says so when the listing is cut (--limit, --offset)."""
    from services.queries import list_dossiers
    from services.runtime import default_uow_factory

    with default_uow_factory()() as uow:
        rows = list_dossiers(uow, state=state, programme=programme, limit=limit, offset=offset)
        total = _count_dossiers(uow, state=state, programme=programme)
    for r in rows:
        typer.echo(f"{r['id']:>6}  {r['reference']:<18} {r['state']:<19} {r['programme']:<15} "
                   f"aide {r['aid_total'] or '-':>10}  payé {r['paid']:>10}  {r['company']}")
    if not rows:
        typer.echo("Aucun dossier." if not total else f"Aucun dossier après les {offset} premiers (sur {total}).")
        return
    note = listing_note(len(rows), offset, total)
    if note:
        typer.echo(note, err=True)


def _dossier_id(uow, key: str) -> int:
    return int(key) if key.isdigit() else uow.dossier_by_reference(key).id


@dossier_app.command("show")
def dossier_show(dossier: str):
    from services.queries import dossier_summary
    from services.runtime import default_uow_factory

    with default_uow_factory()() as uow:
        _out(dossier_summary(uow, _dossier_id(uow, dossier)))


@dossier_app.command("history")
def dossier_history(dossier: str, as_json: bool = typer.Option(False, "--json")):
    """The dossier's events, oldest first: when, who (role), what, why."""
    from services.history import describe
    from services.queries import history
    from services.runtime import default_uow_factory

    with default_uow_factory()() as uow:
        did = _dossier_id(uow, dossier)
        events = history(uow, did)
        ref = uow.dossier(did).reference
    if as_json:
        _out(events)
        return
    typer.echo(f"Historique du dossier {ref} — {len(events)} événement(s)")
    for e in events:
        typer.echo(describe(e))


@dossier_app.command("do")
def dossier_do(dossier: str, command: str, as_role: str = typer.Option(..., "--as"),
               with_json: str = typer.Option("{}", "--with"), actor: str = typer.Option(None, "--actor")):
    """Run one command on a dossier, e.g. `usine dossier do 12 take_for_review --as officer`."""
    from rules.errors import ConcurrencyConflict, NotFound, RuleViolation
    from services import commands
    from services.runtime import default_clock, default_uow_factory
    from services.scenario import DISPATCH

    try:
        payload = json.loads(with_json)
    except json.JSONDecodeError as exc:
        typer.echo(f"--with : JSON invalide ({exc.msg})", err=True)
        raise typer.Exit(2)
    if command not in DISPATCH or command == "submit_candidacy":
        typer.echo(f"Commande inconnue : {command} (connues : {', '.join(c for c in DISPATCH if c != 'submit_candidacy')})", err=True)
        raise typer.Exit(2)
    factory = default_uow_factory()
    try:
        with factory() as uow:
            did = _dossier_id(uow, dossier)
        with factory() as uow:
            outcome = DISPATCH[command][1]({"do": command, "with": payload}, uow, default_clock(),
                                           commands.Actor(actor or as_role, as_role), did, None)
    except RuleViolation as exc:
        typer.echo(json.dumps({"refused": exc.as_dict()}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    except (NotFound, ConcurrencyConflict) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1)
    _out({"dossier": outcome.reference, "state": outcome.state, "version": outcome.version,
          "adjustments": outcome.adjustments, **outcome.details})


@app.command("demo")
def demo(dossiers: int = typer.Option(240, help="Nombre de dossiers à générer"),
         seed: int = typer.Option(2021, help="Graine du générateur"),
         force: bool = typer.Option(False, help="Ajouter la démo même si la base contient des dossiers"),
         as_of: str = typer.Option(None, "--as-of",
                                   help="Instant de la démo (ISO 8601) ; défaut : l'horloge de l'espace de travail"),
         as_json: bool = typer.Option(False, "--json", help="Le compte rendu complet en JSON (pour les scripts)")):
    """Load the demo: the three programmes and dossiers in every state, played through the services
    up to the demo instant (the workspace's clock unless --as-of says otherwise: no event is ever
    dated after the clock), then anchored (the anchor is appended to $USINE_AUDIT_JOURNAL when set)."""
    from sqlalchemy import func, select

    from db import models as m
    from rules import french
    from rules.calendar import PARIS
    from services.demo import load_demo
    from services.runtime import default_clock, default_uow_factory

    now = default_clock().now().replace(microsecond=0)
    instant = now
    if as_of:
        try:
            instant = datetime.fromisoformat(as_of)
        except ValueError:
            typer.echo(f"--as-of : « {as_of} » n'est pas un instant ISO 8601 (ex. 2025-06-15T09:00:00+02:00).", err=True)
            raise typer.Exit(2)
        instant = instant if instant.tzinfo else instant.replace(tzinfo=PARIS)
        if instant > now:
            typer.echo(f"--as-of : la démo ne peut pas être jouée après l'horloge de l'espace de travail "
                       f"({french.instant(now)}).", err=True)
            raise typer.Exit(2)

    factory = default_uow_factory()
    with factory() as uow:
        existing = uow.session.scalar(select(func.count()).select_from(m.Dossier))
    if existing and not force:
        typer.echo(f"La base contient déjà {existing} dossier(s) : démo non rechargée (--force pour ajouter).")
        return
    import os

    report = load_demo(factory, dossiers=dossiers, seed=seed, journal=os.environ.get("USINE_AUDIT_JOURNAL") or None,
                       as_of=instant)
    if as_json:
        _out(report)
        return
    with factory() as uow:
        names = {p.id: f"{p.name} ({p.region})" for p in uow.catalogue.all()}
    typer.echo(demo_summary(report, names))


_SWEEP_LINES = (("reminders", "relance(s) de pièces"), ("final_notices", "dernier(s) rappel(s)"),
                ("lapsed", "dossier(s) devenu(s) caduc(s)"), ("closed_after_deadline", "dossier(s) soldé(s) au délai"),
                ("window_notices", "avis d'ouverture ou de clôture d'appel"),
                ("agenda_reminders", "rappel(s) d'ordre du jour"), ("loan_notices", "avis et relances de remboursement"),
                ("loan_defaults", "défaut(s) de remboursement"))


def demo_summary(report: dict, programme_names: dict[str, str]) -> str:
    """What `usine demo` tells the person who ran it, in French: what was played, as of when, what
    waits for whom, and how to sign in (`--json` gives the whole report, for scripts)."""
    from rules import french
    from states.lifecycle import STATE_LABELS, STATES
    from web.format import role_after

    n = french.number
    as_of = french.instant(datetime.fromisoformat(report["as_of"]))
    lines = [f"Démo chargée au {as_of} : {n(report['dossiers'])} dossiers, {n(report['commands'])} commandes jouées "
             f"par les services ({n(len(report['refused']))} dossier(s) arrêté(s) en route par un refus des règles, "
             f"{n(report['cut_short_by_demo_instant'])} encore en cours à l'instant de la démo).", "",
             "Dossiers par programme :"]
    lines += [f"  {programme_names.get(p, p)} : {n(c)}" for p, c in report["by_programme"].items()]
    # A refusal is a rule that stopped a demo life: said, with the rule's own words.
    lines += [f"  refus — {programme_names.get(r['programme'], r['programme'])} : {r['message']}" for r in report["refused"]]
    lines += ["", "Dossiers par état :"]
    lines += [f"  {STATE_LABELS[s]} : {n(report['by_state'][s])}" for s in STATES if s in report["by_state"]]
    sweep = report["sweep"]
    swept = [f"{n(sweep[k])} {label}" for k, label in _SWEEP_LINES if sweep.get(k)]
    lines += ["", "Balayage des échéances à l'instant de la démo : " + ("; ".join(swept) if swept else "rien à faire") + "."]
    waiting = report["at_demo_instant"]
    sessions = waiting["sessions_with_dossiers_to_vote"]
    if sessions:
        lines.append("Séances avec des dossiers à voter :")
        for code, entry in sessions.items():
            day = french.day(date.fromisoformat(entry["session_date"]))
            lines.append(f"  {code} du {day} ({'à venir' if entry['upcoming'] else 'tenue'}) : {n(entry['dossiers'])} dossier(s)")
    lines.append(f"Demandes de paiement en attente du service financier : {n(waiting['pending_payment_claims'])}.")
    anchored = report["anchor"]
    lines += ["", f"Historiques scellés pour l'audit (ancrage) : {n(anchored['dossiers'])} dossiers, "
              f"{n(anchored['events'])} événements.", "",
              "Comptes de démonstration (mot de passe commun : « " + (report["users"][0]["password"] if report["users"] else "") + " ») :"]
    for user in report["users"]:
        after = role_after(user["display_name"], user["role"])
        lines.append(f"  {user['username']} — {user['display_name']}" + (f" {after}" if after else ""))
    if report.get("teams"):
        lines += ["", "Équipes :"]
        lines += [f"  {t['name']} ({t['region']}) : " + ", ".join(m["display_name"] for m in t["members"])
                  for t in report["teams"]]
        # The colleagues the teams seeded have accounts too, with the same password.
        listed = {u["username"] for u in report["users"]}
        colleagues = {m["username"]: m["display_name"] for t in report["teams"] for m in t["members"]
                      if m["username"] not in listed}
        if colleagues:
            lines += ["", "Comptes des collègues des équipes (même mot de passe) :"]
            lines += [f"  {username} — {name}" for username, name in sorted(colleagues.items())]
    return "\n".join(lines)


def register_extensions() -> None:
    """Commands of the other rooms (flows, API and users, audit), each in its own module."""
    from cli import api, audit, flows, loans, oidc, opendata, retention

    for module in (flows, api, audit, opendata, oidc, loans, retention):
        module.register(app)


def main() -> None:
    """`usine …`: one request id for the whole invocation (`cli-…`: the events it writes carry
    it, and so do its log lines), and Usine's logging (JSON lines on stderr, warnings and
    errors only unless USINE_LOG_LEVEL says otherwise: what a person reads is on stdout)."""
    from services.telemetry import bound_request_id, configure_logging

    configure_logging("cli", level=os.environ.get("USINE_LOG_LEVEL") or "WARNING")
    register_extensions()
    with bound_request_id(prefix="cli-"):
        app()


if __name__ == "__main__":
    main()
