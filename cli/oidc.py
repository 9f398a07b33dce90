"""`usine oidc add|list|remove|check`: the agents' e-mail addresses for the sign-in through the
region's OpenID provider (ProConnect or its own), and a look at the configured provider."""
from __future__ import annotations

import json

import typer

oidc_app = typer.Typer(help="Connexion des agents par fournisseur d'identité (ProConnect ou celui de la région).",
                       no_args_is_help=True)


def _factory():
    from services.runtime import default_uow_factory

    return default_uow_factory()


def _clock():
    from services.runtime import default_clock

    return default_clock()


@oidc_app.command("add")
def oidc_add(
    email: str = typer.Argument(..., help="Adresse électronique de l'agent, telle que le fournisseur la transmet"),
    user: str = typer.Option(None, "--user", help="Compte existant à rattacher (il garde son rôle et ses régions)"),
    role: str = typer.Option(None, "--role", help="Sans compte : officer, head, finance, auditor ou admin"),
    region: list[str] = typer.Option(None, "--region", help="Sans compte : région (répétable)"),
    name: str = typer.Option(None, "--name", help="Sans compte : nom affiché (défaut : celui du fournisseur)"),
):
    """Register an address: linked to an existing account (--user), or pre-registered with a role
    and regions (the account is opened at the first sign-in). There is no default role."""
    from rules.errors import NotFound, RuleViolation
    from services.oidc import register_identity

    try:
        with _factory()() as uow:
            out = register_identity(uow=uow, clock=_clock(), email=email, username=user, role=role,
                                    regions=region or None, display_name=name)
    except RuleViolation as exc:
        typer.echo(json.dumps({"refused": exc.as_dict()}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    except NotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@oidc_app.command("list")
def oidc_list(as_json: bool = typer.Option(False, "--json")):
    """The registered addresses, with their account or their pre-registered role."""
    from services.oidc import list_identities

    with _factory()() as uow:
        rows = list_identities(uow)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        who = f"compte {r['username']}" if r["username"] else f"à ouvrir : {r['role']} {', '.join(r['regions'])}".rstrip()
        state = "identité liée" if r["bound"] else "jamais connecté(e)"
        typer.echo(f"{r['email']:<44} {who:<40} {state}")


@oidc_app.command("remove")
def oidc_remove(email: str):
    """Forget an address (its account stays: `usine users disable` closes it)."""
    from rules.errors import NotFound, RuleViolation
    from services.oidc import remove_identity

    try:
        with _factory()() as uow:
            remove_identity(uow=uow, email=email)
    except (NotFound, RuleViolation) as exc:
        typer.echo(getattr(exc, "message", str(exc)), err=True)
        raise typer.Exit(1)
    typer.echo(f"{email} : retirée")


@oidc_app.command("check")
def oidc_check():
    """Read the configured provider's discovery document and say what the workspace will use."""
    import httpx

    from services.oidc import OidcConfig, OidcConfigError

    try:
        config = OidcConfig.from_settings()
    except OidcConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    if config is None:
        typer.echo("Aucun fournisseur configuré (USINE_OIDC_ISSUER) : connexion par mot de passe seulement.")
        return
    try:
        metadata = httpx.get(config.discovery_url, timeout=config.timeout_seconds).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        typer.echo(f"{config.discovery_url} : illisible ({exc}).", err=True)
        raise typer.Exit(1)
    problems = []
    if metadata.get("issuer") != config.issuer:
        problems.append(f"issuer annoncé « {metadata.get('issuer')} », configuré « {config.issuer} »")
    if "S256" not in metadata.get("code_challenge_methods_supported", ["S256"]):
        problems.append("PKCE S256 non annoncé")
    for acr in config.acr_values:
        if acr not in metadata.get("acr_values_supported", config.acr_values):
            problems.append(f"acr « {acr} » non annoncé")
    if not metadata.get("end_session_endpoint"):
        problems.append("pas d'end_session_endpoint : la déconnexion ne clora pas la session du fournisseur")
    typer.echo(f"Fournisseur : {config.label} ({config.issuer})")
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint", "jwks_uri"):
        typer.echo(f"  {key:<24} {metadata.get(key, '—')}")
    typer.echo(f"  portées demandées         {config.scopes}")
    typer.echo(f"  acr exigés                {' '.join(config.acr_values) or '—'}")
    for p in problems:
        typer.echo(f"À corriger : {p}.", err=True)
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(oidc_app, name="oidc")
