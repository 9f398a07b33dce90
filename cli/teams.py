"""`usine users teams list|create|add|remove`: the officers' teams of a region (work sharing,
`services.assignment`). `--as` names the head of service who composes them (its region only);
without it the console acts as an administrator."""
from __future__ import annotations

import json

import typer

teams_app = typer.Typer(help="Équipes de chargé(e)s de mission, par région.", no_args_is_help=True)


def _run(as_user: str | None, work):
    from cli import api as cli_api  # the users commands' own database and clock
    from rules.errors import NotFound, RuleViolation
    from services.commands import Actor
    from services.users import actor_for, get_user

    factory, clock = cli_api._factory(), cli_api._clock()
    actor = Actor("usine-cli", "admin")
    if as_user:
        with factory() as uow:
            user = get_user(uow, as_user)
            if user is None or not user.active:
                typer.echo(f"Utilisateur inconnu ou désactivé : {as_user}", err=True)
                raise typer.Exit(1)
            actor = actor_for(user)
    try:
        with factory() as uow:
            return work(uow, clock, actor)
    except RuleViolation as exc:
        typer.echo(json.dumps({"refused": exc.as_dict()}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    except NotFound as exc:
        typer.echo(f"Équipe inconnue : {exc.key}", err=True)
        raise typer.Exit(1)


def _show(team) -> None:
    members = ", ".join(n for _, n in team.members) or "aucun membre"
    typer.echo(f"{team.code:<16} {team.region:<20} {team.name}  — {members}")


AS = typer.Option(None, "--as", help="Le compte du ou de la chef(fe) de service qui compose l'équipe")


@teams_app.command("list")
def teams_list(region: str = typer.Option(None, "--region"), as_json: bool = typer.Option(False, "--json")):
    """The teams and their members (by display name)."""
    from services.assignment import list_teams

    teams = _run(None, lambda uow, clock, actor: list_teams(uow, region))
    if as_json:
        typer.echo(json.dumps([t.as_dict() for t in teams], ensure_ascii=False, indent=2))
        return
    for t in teams:
        _show(t)


@teams_app.command("create")
def teams_create(code: str, name: str = typer.Option(..., "--name", help="Nom de l'équipe"),
                 region: str = typer.Option(..., "--region"), as_user: str = AS):
    """Create a team of a region."""
    from services.assignment import create_team

    _show(_run(as_user, lambda uow, clock, actor: create_team(uow=uow, clock=clock, actor=actor, code=code,
                                                             name=name, region=region)))


@teams_app.command("add")
def teams_add(code: str, username: str, as_user: str = AS):
    """Put an officer of the team's region in the team."""
    from services.assignment import add_member

    _show(_run(as_user, lambda uow, clock, actor: add_member(uow=uow, clock=clock, actor=actor, team=code,
                                                            username=username)))


@teams_app.command("remove")
def teams_remove(code: str, username: str, as_user: str = AS):
    """Take an officer out of the team."""
    from services.assignment import remove_member

    _show(_run(as_user, lambda uow, clock, actor: remove_member(uow=uow, clock=clock, actor=actor, team=code,
                                                               username=username)))
