"""`usine retention …`: RGPD — the retention run (storage limitation) and a person's export
(right of access). Thin shells over `services.retention`. Exit codes: 0 done, 1 a dossier was
refused (its history does not verify, or it changed meanwhile), 2 bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import typer

retention_app = typer.Typer(help="RGPD : durée de conservation des dossiers clôturés, export des données d'une personne.",
                            no_args_is_help=True)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@retention_app.command("run")
def run(dry_run: bool = typer.Option(False, "--dry-run", help="Dire ce qui serait fait, sans rien écrire ni supprimer"),
        as_json: bool = typer.Option(False, "--json", help="Rapport en JSON")):
    """Anonymise the closed dossiers whose programme's retention is over (one unit of work each,
    with its `anonymise` event), then delete their pieces' files. Exit 1 when a dossier was refused."""
    from services.retention import run_retention
    from services.runtime import default_clock, default_uow_factory

    report = run_retention(default_uow_factory(), default_clock(), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(1 if report.refused else 0)


@retention_app.command("export-person")
def export_person_command(
    email: str = typer.Option(..., "--email", help="Adresse électronique de la personne"),
    name: list[str] = typer.Option([], "--name", help="Nom affiché sous lequel elle a agi sans compte (répétable)"),
    format: str = typer.Option("text", "--format", help="text (lisible, en français) ou json"),
    output: Path = typer.Option(None, "-o", "--output", help="Fichier à écrire (défaut : la sortie standard)"),
):
    """Everything Usine holds about a person (RGPD art. 15): accounts, dossiers, actions, letters, pieces."""
    from services.retention import export_person, person_export_lines
    from services.runtime import default_clock, default_uow_factory

    if not EMAIL.match(email.strip()):
        typer.echo(f"--email : une adresse électronique est attendue (reçu « {email} »).", err=True)
        raise typer.Exit(2)
    if format not in ("text", "json"):
        typer.echo(f"--format : « text » ou « json » (reçu « {format} »).", err=True)
        raise typer.Exit(2)
    with default_uow_factory()() as uow:
        export = export_person(uow.session, email, names=tuple(name), now=default_clock().now())
    text = (json.dumps(export, ensure_ascii=False, indent=2) + "\n" if format == "json"
            else "\n".join(person_export_lines(export)) + "\n")
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"Export écrit dans {output}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
