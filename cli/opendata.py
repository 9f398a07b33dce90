"""`usine opendata subventions`: the voted aids of a programme in the SCDL « subventions » schema."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

opendata_app = typer.Typer(help="Données ouvertes : les aides votées au format SCDL « subventions » 2.1.1.",
                           no_args_is_help=True)


def _day(raw: str | None, option: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        typer.echo(f"{option} : une date AAAA-MM-JJ est attendue (reçu « {raw} »).", err=True)
        raise typer.Exit(2)


@opendata_app.command("subventions")
def subventions(
    programme: str = typer.Option(..., "--programme", help="Identifiant du programme (ex. occitanie-prif)"),
    voted_from: str = typer.Option(None, "--from", help="Aides votées à partir de ce jour (AAAA-MM-JJ)"),
    voted_to: str = typer.Option(None, "--to", help="Aides votées jusqu'à ce jour inclus (AAAA-MM-JJ)"),
    attributor_siret: str = typer.Option(None, "--attributor-siret",
                                         help="SIRET de la collectivité qui attribue (si le fichier du programme ne le donne pas)"),
    output: Path = typer.Option(None, "-o", "--output", help="Fichier CSV à écrire (défaut : la sortie standard)"),
):
    """Write the programme's voted aids as SCDL CSV (UTF-8, comma-separated, one header line)."""
    from rules.errors import RuleViolation
    from services.opendata import export_subsidies
    from services.runtime import default_uow_factory

    start, end = _day(voted_from, "--from"), _day(voted_to, "--to")
    try:
        with default_uow_factory()() as uow:
            export = export_subsidies(uow=uow, programme_id=programme, attributor_siret=attributor_siret,
                                      voted_from=start, voted_to=end)
    except RuleViolation as exc:
        typer.echo(json.dumps({"refused": exc.as_dict()}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    text = export.csv()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(export.rows)} aide(s) votée(s) écrites dans {output}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(opendata_app, name="opendata")
