"""`usine api` (serve the REST API) and `usine users add|list|disable|enable|passwd|seed-demo`."""
from __future__ import annotations

import json
import sys

import typer

from cli.teams import teams_app

users_app = typer.Typer(help="Comptes des utilisateurs (rôles et périmètres).", no_args_is_help=True)
users_app.add_typer(teams_app, name="teams")  # work sharing: the officers' teams (cli/teams.py)


def _factory():
    from services.runtime import default_uow_factory

    return default_uow_factory()


def _clock():
    from services.runtime import default_clock

    return default_clock()


def _ask_password(label: str = "Mot de passe") -> str:
    """Asked twice, hidden, until both entries agree (click's own confirmation speaks English)."""
    while True:
        password = typer.prompt(label, hide_input=True)
        if typer.prompt(f"Confirmez le {label[0].lower()}{label[1:]}", hide_input=True) == password:
            return password
        typer.echo("Les deux saisies diffèrent : recommencez.", err=True)


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Identifiant (a-z, 0-9, . _ -)"),
    role: str = typer.Option(..., "--role", help="applicant, consultant, officer, head, finance, auditor ou admin"),
    region: list[str] = typer.Option(None, "--region", help="Région (répétable) : officer, head, finance, auditor"),
    siren: str = typer.Option(None, "--siren", help="SIREN de l'entreprise (applicant)"),
    consultant: str = typer.Option(None, "--consultant", help="Nom du prestataire référencé (consultant)"),
    name: str = typer.Option(None, "--name", help="Nom affiché"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Lire le mot de passe sur l'entrée standard"),
):
    """Create a user. The password is asked for (twice), or read from stdin; there is no default."""
    from rules.errors import RuleViolation
    from services.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = _ask_password()
    try:
        with _factory()() as uow:
            user = create_user(uow=uow, clock=_clock(), username=username, password=password, role=role,
                               display_name=name, regions=region or [], siren=siren, consultant=consultant)
    except RuleViolation as exc:
        typer.echo(json.dumps({"refused": exc.as_dict()}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(user, ensure_ascii=False, indent=2))


@users_app.command("list")
def users_list(role: str = typer.Option(None, "--role"), as_json: bool = typer.Option(False, "--json")):
    """List the users (never their password hashes)."""
    from services.users import list_users
    from states.lifecycle import ROLE_LABELS

    with _factory()() as uow:
        users = list_users(uow, role=role)
    if as_json:
        typer.echo(json.dumps(users, ensure_ascii=False, indent=2))
        return
    for u in users:
        scope = ", ".join(u["regions"]) or u["siren"] or u["consultant"] or "—"
        typer.echo(f"{u['username']:<28} {ROLE_LABELS.get(u['role'], u['role']):<22} {'actif' if u['active'] else 'désactivé':<10} {scope}"
                   f"  ({u['display_name']})")


def _switch(change, username: str, done: str) -> None:
    from rules.errors import NotFound

    try:
        with _factory()() as uow:
            user = change(uow=uow, clock=_clock(), username=username)
    except NotFound:
        typer.echo(f"Utilisateur inconnu : {username}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{user['username']} : {done}")


@users_app.command("disable")
def users_disable(username: str):
    """Disable a user: it can no longer sign in and its tokens stop working at once."""
    from services.users import disable_user

    _switch(disable_user, username, "désactivé")


@users_app.command("enable")
def users_enable(username: str):
    """Re-enable a disabled user: it signs in again with its password (its earlier tokens and
    sessions stay ended)."""
    from services.users import enable_user

    _switch(enable_user, username, "réactivé")


@users_app.command("passwd")
def users_passwd(
    username: str = typer.Argument(..., help="Identifiant du compte"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Lire le mot de passe sur l'entrée standard"),
):
    """Set a user's password (asked twice, or read from stdin): its tokens and web sessions end,
    its failed sign-ins are forgotten (a locked account is unlocked)."""
    from rules.errors import NotFound, RuleViolation
    from services.users import change_password

    factory = _factory()
    with factory() as uow:
        from services.users import get_user

        if get_user(uow, username) is None:
            typer.echo(f"Utilisateur inconnu : {username}", err=True)
            raise typer.Exit(1)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = _ask_password("Nouveau mot de passe")
    try:
        change_password(uow_factory=factory, clock=_clock(), username=username, password=password)
    except NotFound:
        typer.echo(f"Utilisateur inconnu : {username}", err=True)
        raise typer.Exit(1)
    except RuleViolation as exc:
        typer.echo(json.dumps({"refused": exc.as_dict()}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    typer.echo(f"{username} : mot de passe changé ; ses jetons et sessions ouverts avant sont fermés.")


@users_app.command("seed-demo")
def users_seed_demo():
    """Create the demo users (demo and training workspaces only) and print them with their password."""
    from services.users import seed_demo_users

    for u in seed_demo_users(_factory(), _clock()):
        scope = ", ".join(u["regions"]) or u["siren"] or u["consultant"] or "—"
        state = "créé" if u["created"] else "existait"
        typer.echo(f"{u['username']:<28} {u['role']:<11} {u['password']}  {scope}  ({state})")


def serve_api(host: str | None = None, port: int | None = None, workers: int = 1, log_level: str = "info") -> None:
    from sqlalchemy.engine import make_url

    from api.server import serve
    from services.config import get_settings

    settings = get_settings()
    if workers > 1 and make_url(settings.database_url).get_backend_name() == "sqlite":
        # The API serializes SQLite's writers on a lock of its process (every Usine transaction
        # writes): a second process would only wait in SQLite's busy handler, up to 100 ms a try.
        typer.echo("--workers : SQLite se sert avec un seul worker (ses écritures sont sérialisées dans le "
                   "processus de l'API) ; pour plusieurs workers, USINE_DATABASE_URL vers PostgreSQL.", err=True)
        raise typer.Exit(2)
    # More than one worker: one SO_REUSEPORT socket each, under api.server's supervisor.
    code = serve(host=host or settings.api_host, port=port or settings.api_port, workers=workers,
                 log_level=log_level)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command("api")
    def api(host: str = typer.Option(None, "--host", help="Adresse d'écoute (défaut : USINE_API_HOST, 127.0.0.1)"),
            port: int = typer.Option(None, "--port", help="Port (défaut : USINE_API_PORT, 8000)"),
            workers: int = typer.Option(1, "--workers", min=1, max=32, help="Processus uvicorn"),
            log_level: str = typer.Option("info", "--log-level")):
        """Serve the REST API alone (uvicorn). The database must be migrated (`usine db upgrade`)."""
        serve_api(host, port, workers, log_level)

    app.add_typer(users_app, name="users")
