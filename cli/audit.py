"""`usine audit …`: the auditor's commands (verify, replay, export, anchor). Thin shells over
`services.audit`. Exit codes: 0 all good, 1 a problem was found (tampering, difference,
discrepancy), 2 bad input."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

audit_app = typer.Typer(help="Audit : intégrité, rejeu à une date, recalcul des règles, exports.",
                        no_args_is_help=True)


def _out(obj) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _journal(option: str | None) -> str | None:
    return option or os.environ.get("USINE_AUDIT_JOURNAL") or None


def _dossier_id(uow, key: str) -> int:
    from rules.errors import NotFound

    try:
        return int(key) if key.isdigit() else uow.dossier_by_reference(key).id
    except NotFound:
        typer.echo(f"Dossier introuvable : {key}", err=True)
        raise typer.Exit(2)


def _instant(value: str | None):
    from rules.errors import RuleViolation
    from services.audit.export import parse_instant

    if value is None:
        return None
    try:
        return parse_instant(value, "--at")
    except RuleViolation as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2)


@audit_app.command("verify")
def verify(dossier: str = typer.Option(None, "--dossier", help="Identifiant ou référence d'un dossier (défaut : tous)"),
           journal: str = typer.Option(None, "--journal", help="Journal des ancres (JSON lines) à confronter à la base "
                                                               "(défaut : $USINE_AUDIT_JOURNAL)"),
           as_json: bool = typer.Option(False, "--json", help="Rapport complet en JSON")):
    """Check every hash chain, every dossier against its history and every anchored head; name each
    edited, removed, inserted or reordered event and each deleted dossier. Exit 1 when anything is wrong."""
    from services.audit.verify import verify_database
    from services.runtime import default_uow_factory
    from services.wording import fr_value

    factory = default_uow_factory()
    dossier_id = None
    if dossier is not None:
        if dossier.isdigit():
            dossier_id = int(dossier)
        else:
            with factory() as uow:
                dossier_id = _dossier_id(uow, dossier)
    report = verify_database(factory.engine, dossier_id=dossier_id, journal=_journal(journal))
    if as_json:
        _out(report.as_dict())
    else:
        scope = f"dossier {dossier}" if dossier else f"{report.dossiers} dossier(s)"
        anchors = report.anchors
        last = anchors.get("last")
        typer.echo(f"Vérification : {scope}, {report.events} événement(s), {anchors.get('anchors', 0)} ancre(s)"
                   + (f" (dernière n°{last['seq']} du {fr_value(last['anchored_at'])}, {last['hash']})" if last else "")
                   + f" — {report.seconds:.2f} s")
        if report.ok:
            typer.echo("Aucune anomalie : historique intègre.")
        for p in report.problems:
            where = p.get("dossier") or "ancres"
            seq = f" n°{p['seq']}" if p.get("seq") is not None else ""
            typer.echo(f"ANOMALIE {p['problem']:<19} {where}{seq} : {p['detail']}")
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("replay")
def replay(dossier: str = typer.Argument(..., help="Identifiant ou référence du dossier"),
           at: str = typer.Option(None, "--at", help="Instant ISO 8601 avec fuseau (défaut : maintenant)"),
           show_diff: bool = typer.Option(False, "--diff", help="Comparer avec l'état enregistré dans la base "
                                                                "(l'état actuel : sans --at, ou --at postérieur "
                                                                "au dernier événement)")):
    """The dossier rebuilt from its events alone as it stood at --at (JSON), with every rule
    re-computed. Exit 1 when a recomputed figure or (with --diff) the stored state differs, or
    when the dossier did not exist yet at --at; exit 2 on bad input, among which --diff with an
    --at before the last event (the tables hold only the present)."""
    from rules.errors import RuleViolation
    from services.audit.replay import BEFORE_FIRST_EVENT, audit_replay
    from services.runtime import default_uow_factory

    instant = _instant(at)
    with default_uow_factory()() as uow:
        did = _dossier_id(uow, dossier)
        try:
            result, differences = audit_replay(uow.session, did, at=instant, compare=show_diff,
                                               catalogue=uow.catalogue, at_field="--at", diff_field="--diff")
        except RuleViolation as exc:
            typer.echo(exc.message, err=True)
            raise typer.Exit(1 if exc.rule == BEFORE_FIRST_EVENT else 2)
        out = result.as_dict()
        bad = not result.ok
        if differences is not None:
            out["diff"] = {"compared_with": "état enregistré actuel", "identical": not differences,
                           "differences": differences}
            bad = bad or bool(differences)
    _out(out)
    raise typer.Exit(1 if bad else 0)


@audit_app.command("export")
def export(dossier: str = typer.Argument(..., help="Identifiant ou référence du dossier"),
           format: str = typer.Option("json", "--format", help="json ou pdf"),
           output: Path = typer.Option(..., "-o", "--output", help="Fichier à écrire"),
           by: str = typer.Option(None, "--by", help="Nom de l'auditeur (inscrit dans l'export)")):
    """A dossier's certified history: JSON (schema dossier-history.v1) or readable PDF."""
    from services.audit.export import dumps, export_dossier
    from services.runtime import default_clock, default_uow_factory

    if format not in ("json", "pdf"):
        typer.echo("--format : json ou pdf", err=True)
        raise typer.Exit(2)
    with default_uow_factory()() as uow:
        did = _dossier_id(uow, dossier)
        data = export_dossier(uow.session, did, clock=default_clock(), catalogue=uow.catalogue, exported_by=by)
    if format == "json":
        output.write_text(dumps(data), encoding="utf-8")
    else:
        from services.audit.pdf import render_pdf

        output.write_bytes(render_pdf(data))
    typer.echo(f"{output} : dossier {data['dossier']['reference']}, {len(data['events'])} événement(s), "
               f"historique {'intègre' if data['verification']['ok'] else 'ALTÉRÉ'}, empreinte {data['export_hash']}")


@audit_app.command("export-programme")
def export_programme(programme: str = typer.Argument(..., help="Identifiant du programme, ex. occitanie-prif"),
                     output: Path = typer.Option(..., "-o", "--output", help="Archive zip à écrire"),
                     pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Joindre le PDF de chaque dossier"),
                     by: str = typer.Option(None, "--by", help="Nom de l'auditeur")):
    """Every dossier of a programme in one zip (JSON + PDF per dossier, programme versions, anchors, manifest)."""
    from rules.errors import RuleViolation
    from services.audit.export import export_programme as run
    from services.runtime import default_clock, default_uow_factory

    try:
        report = run(default_uow_factory(), programme, output, clock=default_clock(), with_pdf=pdf, exported_by=by)
    except RuleViolation as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2)
    typer.echo(f"{output} : {report['dossiers']} dossier(s), {report['verified']} intègre(s), {report['files']} fichier(s)")


@audit_app.command("anchor")
def anchor(journal: str = typer.Option(None, "--journal", help="Journal des ancres à compléter (JSON lines ; "
                                                               "défaut : $USINE_AUDIT_JOURNAL)")):
    """Anchor every dossier's chain head (the scheduled flow does it daily). Publish the printed
    hash outside the database: it vouches for every history up to now."""
    from services.audit.anchors import AnchorRefused
    from services.audit.anchors import anchor as run
    from services.runtime import default_clock, default_uow_factory

    try:
        result = run(default_uow_factory(), default_clock(), journal=_journal(journal))
    except AnchorRefused as exc:
        typer.echo(str(exc), err=True)
        for p in exc.problems:
            typer.echo(f"ANOMALIE {p['problem']} {p.get('dossier') or ''} {p.get('seq') or ''} : {p['detail']}", err=True)
        raise typer.Exit(1)
    _out(result.as_dict())


@audit_app.command("anchors")
def anchors(limit: int = typer.Option(20, help="Nombre d'ancres (les plus récentes)")):
    """The latest anchors, newest first."""
    from services.audit.anchors import list_anchors
    from services.runtime import default_uow_factory

    with default_uow_factory()() as uow:
        _out(list_anchors(uow.session, limit))


@audit_app.command("export-anchors")
def export_anchors(output: Path = typer.Option(..., "-o", "--output", help="Fichier à écrire (JSON lines)")):
    """Write every anchor with the dossier heads it recorded, in the journal format, to keep
    outside the database (another machine, a mail to the controller): `usine audit verify
    --journal FILE` then checks the database against that copy."""
    from services.audit.anchors import export_journal
    from services.runtime import default_uow_factory
    from services.wording import fr_value

    with default_uow_factory()() as uow:
        written = export_journal(uow.session, output)
    last = written["last"]
    typer.echo(f"{output} : {written['anchors']} ancre(s)"
               + (f", la dernière n°{last['seq']} du {fr_value(last['anchored_at'])} ({last['hash']})" if last else "")
               + f" ; empreinte SHA-256 du fichier {written['sha256']}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(audit_app())
