"""`usine serve`, `usine sweep`, `usine deliver`, `usine digest`, `usine dashboard`, `usine notifications ...`,
`usine mailbox ...`: the scheduled work, the outbox and the local mailbox, from the command line.
Registered by `cli.main`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

notifications_app = typer.Typer(help="Messages : aperçu, file d'envoi, lettres mortes.", no_args_is_help=True)
mailbox_app = typer.Typer(help="Boîte locale : les messages reçus par le serveur SMTP local de `usine serve` "
                               "(un fichier .eml par message sous var/mailbox/).", no_args_is_help=True)


def _out(obj) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _clock(at: str | None):
    from services.clock import FrozenClock
    from services.runtime import default_clock

    if not at:
        return default_clock()
    from workflows.runtime import instant

    try:
        return FrozenClock(instant(at))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)


# -- one-shot runs ---------------------------------------------------------------------------------

def future_refusal(at: str, instant, now) -> str | None:
    """Why `usine sweep --at` refuses an instant after the workspace clock's now (None: allowed)."""
    if instant <= now:
        return None
    from rules import french

    return (f"--at {at} est après l'heure de l'espace de travail ({french.instant(now, seconds=True)}, "
            "Europe/Paris) : le balayage écrirait des événements et des lettres datés dans le futur (relances, "
            "caducités, clôtures) ; les actions suivantes, datées de maintenant, passeraient avant eux dans "
            "l'historique des dossiers. Sans --at, le balayage se fait maintenant ; --force pour le faire "
            "quand même (base d'essai).")


def sweep_command(at: str = typer.Option(None, "--at", help="Instant ISO 8601 avec décalage (défaut : maintenant, horloge du service). "
                                              "Un instant après maintenant est refusé sans --force."),
                  part: list[str] = typer.Option(None, "--part", help="Un seul balayage (répétable) : documents, lapses, payment_deadlines, windows, agendas"),
                  batch_size: int = typer.Option(5000, "--batch-size", min=1),
                  force: bool = typer.Option(False, "--force", help="Accepter un --at après l'heure de l'espace de travail. "
                                             "Sans lui, c'est refusé : les événements écrits seraient datés après "
                                             "« maintenant », et les actions à venir passeraient avant eux dans "
                                             "l'historique (à réserver à une base d'essai).")):
    """Run every sweep once as of an instant: reminders, lapses, payment deadlines, AMI window
    notices, council agenda reminders. Prints the report (JSON)."""
    from services.runtime import default_clock, default_uow_factory
    from services.sweep import PARTS, sweep

    parts = tuple(part) if part else PARTS
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        typer.echo(f"--part : inconnu {', '.join(unknown)} (connus : {', '.join(PARTS)})", err=True)
        raise typer.Exit(2)
    clock = _clock(at)
    if at and not force:
        refusal = future_refusal(at, clock.now(), default_clock().now())
        if refusal:
            typer.echo(refusal, err=True)
            raise typer.Exit(2)
    report = sweep(uow_factory=default_uow_factory(), clock=clock, batch_size=batch_size, parts=parts)
    _out(report.as_dict())
    if report.errors:
        raise typer.Exit(1)


def deliver_command(at: str = typer.Option(None, "--at", help="Instant ISO 8601 (défaut : maintenant)"),
                    batch_size: int = typer.Option(50, "--batch-size", min=1),
                    max_batches: int = typer.Option(None, "--max-batches", min=1)):
    """Send the queued messages that are due, over SMTP (USINE_SMTP_*)."""
    from services.delivery import deliver, sender_from_settings
    from services.runtime import default_uow_factory

    report = deliver(uow_factory=default_uow_factory(), sender=sender_from_settings(), clock=_clock(at),
                     batch_size=batch_size, max_batches=max_batches)
    _out(report.as_dict())
    if report.stopped:
        raise typer.Exit(1)


def digest_command(at: str = typer.Option(None, "--at", help="Instant ISO 8601 (défaut : maintenant)"),
                   include_empty: bool = typer.Option(False, "--include-empty", help="Aussi aux agents sans échéance"),
                   any_day: bool = typer.Option(False, "--any-day", help="Même un jour non ouvré")):
    """Queue today's digest of each officer (deadlines in the next 7 days)."""
    from services.digest import queue_daily_digests
    from services.runtime import default_uow_factory

    report = queue_daily_digests(uow_factory=default_uow_factory(), clock=_clock(at),
                                 working_days_only=not any_day, include_empty=include_empty)
    _out(report.as_dict())


def dashboard_command(at: str = typer.Option(None, "--at", help="Instant ISO 8601 (défaut : maintenant)")):
    """Recount the dashboard's figures of every programme now (what the `refresh-dashboard` flow
    does every 15 minutes)."""
    from rules.french import instant
    from services.dashboard import refresh
    from services.runtime import default_uow_factory

    factory = default_uow_factory()
    report = refresh(uow_factory=factory, clock=_clock(at))
    with factory() as uow:
        names = [f"{p.name} ({p.region})" for p in uow.catalogue.all() if p.id in report.programmes]
    typer.echo(f"Chiffres du tableau de bord recomptés le {instant(report.computed_at)} : "
               f"{len(names)} programme{'s' if len(names) != 1 else ''}" + (" — " + ", ".join(names) if names else "") + ".")


# -- notifications ----------------------------------------------------------------------------------

@notifications_app.command("preview")
def notifications_preview(kind: str = typer.Argument(..., help="Type de message (ex. documents_reminder)"),
                          dossier: str = typer.Option(..., "--dossier", help="Identifiant ou référence du dossier"),
                          html: bool = typer.Option(False, "--html", help="Afficher la version HTML"),
                          at: str = typer.Option(None, "--at", help="Instant ISO 8601 (défaut : maintenant)"),
                          pdf: str = typer.Option(None, "--pdf", help="Écrire aussi le courrier en PDF dans ce fichier")):
    """Render one kind of message for one dossier, without queueing anything (`--pdf FILE`: the
    same text as the PDF the e-mail would carry, services.letters)."""
    from rules.errors import NotFound, RuleViolation
    from services.previews import preview
    from services.runtime import default_uow_factory

    try:
        with default_uow_factory()() as uow:
            dossier_id = int(dossier) if dossier.isdigit() else uow.dossier_by_reference(dossier).id
            message, recipient, source = preview(uow, kind=kind, dossier_id=dossier_id, clock=_clock(at))
            reference = uow.dossier(dossier_id).reference
    except (RuleViolation, NotFound) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1)
    if pdf:
        from rules.calendar import paris_date
        from services.letters import letter_pdf_from_text

        content, _ = letter_pdf_from_text(kind, reference, message.subject, message.text, paris_date(_clock(at).now()))
        with open(pdf, "wb") as fh:
            fh.write(content)
    if html:
        typer.echo(message.html)
        return
    typer.echo(f"À : {recipient['name']} <{recipient['email']}> ({recipient['role']})")
    typer.echo(f"Objet : {message.subject}")
    typer.echo(f"Modèle : {message.kind} sha256 {message.template_hash}"
               + (" — contexte du message déjà mis en file" if source == "stored" else ""))
    typer.echo("")
    typer.echo(message.text, nl=False)


def _list(status: str | None, dossier: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    from services.delivery import list_notifications
    from services.runtime import default_uow_factory

    with default_uow_factory()() as uow:
        dossier_id = None
        if dossier:
            dossier_id = int(dossier) if dossier.isdigit() else uow.dossier_by_reference(dossier).id
        rows = list_notifications(uow, status=status, dossier_id=dossier_id, kind=kind, limit=limit)
    if as_json:
        _out(rows)
        return
    if not rows:
        typer.echo("Aucun message.")
    for r in rows:
        line = f"{r['id']:>7}  {r['status']:<6} {r['kind']:<22} {r['to']:<40} essais {r['attempts']}  {r['subject']}"
        typer.echo(line)
        if r["status"] == "dead" or (r["status"] == "queued" and r["last_error"]):
            typer.echo(f"         dernière erreur : {r['last_error']}")
            if r["status"] == "queued":
                typer.echo(f"         prochain essai : {r['next_attempt_at']}")


@notifications_app.command("list")
def notifications_list(status: str = typer.Option(None, "--status", help="queued, sent ou dead"),
                       dossier: str = typer.Option(None, "--dossier"), kind: str = typer.Option(None, "--kind"),
                       limit: int = typer.Option(50, "--limit", min=1), as_json: bool = typer.Option(False, "--json")):
    """The outbox, newest first."""
    _list(status, dossier, kind, limit, as_json)


@notifications_app.command("dead")
def notifications_dead(limit: int = typer.Option(200, "--limit", min=1), as_json: bool = typer.Option(False, "--json")):
    """Dead letters: messages refused for good or failed too many times, with their last error."""
    _list("dead", None, None, limit, as_json)


@notifications_app.command("retry")
def notifications_retry(notification_id: int = typer.Argument(...)):
    """Put a dead letter back in the queue (attempts start again)."""
    from services.delivery import requeue_dead
    from services.runtime import default_clock, default_uow_factory

    if not requeue_dead(uow_factory=default_uow_factory(), clock=default_clock(), notification_id=notification_id):
        typer.echo(f"Le message {notification_id} n'est pas une lettre morte.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Message {notification_id} remis en file.")


# -- the local mailbox ---------------------------------------------------------------------------------

def mailbox_dir(settings=None) -> Path:
    """Where the local sink keeps its messages: `$USINE_VAR_DIR/mailbox` (./var/mailbox)."""
    from services.config import get_settings

    return Path((settings or get_settings()).var_dir) / "mailbox"


def _paris(instant) -> str:
    from rules.calendar import PARIS

    # not rules.french.instant: a mail's Date header may carry no offset (a naive instant), which
    # the French formatter refuses; a listing of the mailbox shows it anyway.
    return f"{instant.astimezone(PARIS):%d/%m/%Y %H:%M:%S}"


@mailbox_app.command("list")
def mailbox_list(limit: int = typer.Option(20, "--limit", min=1, help="Nombre de messages (les plus récents)"),
                 to: str = typer.Option(None, "--to", help="Seulement les messages dont le destinataire contient ce texte"),
                 as_json: bool = typer.Option(False, "--json")):
    """The latest messages of the local mailbox, newest first: number, date (the service's clock),
    recipient, subject."""
    from notifications.sink import Mailbox

    box = Mailbox(mailbox_dir())
    total = len(box)
    messages = box.list(limit=limit, to=to)
    matching = len(box.list(limit=None, to=to)) if to else total
    if as_json:
        _out([{"number": m.number, "dated": m.dated.isoformat(), "received_at": m.received_at.isoformat(),
               "to": m.to, "kind": m.kind,
               "subject": m.subject, "file": str(m.path)} for m in messages])
        return
    if not matching:
        typer.echo(f"Boîte locale {box.directory} : aucun message" + (f" pour « {to} » ({total} en tout)." if to else "."))
        return
    scope = f"{matching} message(s) pour « {to} » ({total} en tout)" if to else f"{total} message(s)"
    typer.echo(f"Boîte locale {box.directory} : {scope}"
               + (f", les {len(messages)} plus récents" if len(messages) < matching else "") + " — `usine mailbox show N`")
    for m in messages:
        # Dated by the service's clock (the letter's Date), as the workspace reads it.
        typer.echo(f"{m.number:>6}  {_paris(m.dated)}  {m.to:<48} {m.subject}")


@mailbox_app.command("show")
def mailbox_show(number: int = typer.Argument(None, help="Numéro du message (défaut : le dernier reçu)"),
                 html: bool = typer.Option(False, "--html", help="La partie HTML au lieu du texte"),
                 raw: bool = typer.Option(False, "--raw", help="Le fichier .eml tel quel")):
    """One message of the local mailbox: its headers and its text (or HTML, or the raw .eml)."""
    from notifications.sink import Mailbox

    box = Mailbox(mailbox_dir())
    message = box.get(number)
    if message is None:
        typer.echo(f"Boîte locale {box.directory} : " + (f"pas de message n° {number}." if number is not None
                                                          else "aucun message."), err=True)
        raise typer.Exit(1)
    if raw:
        typer.echo(message.path.read_bytes().decode("utf-8", "replace"), nl=False)
        return
    typer.echo(f"Message n° {message.number} — reçu le {_paris(message.received_at)} ({message.path.name})")
    for header in ("From", "To", "Date", "Subject", "Message-ID", "X-Usine-Notification-Kind"):
        if message.message.get(header):
            typer.echo(f"{header} : {message.message[header]}")
    typer.echo("")
    body = message.body("html" if html else "plain")
    typer.echo(body if body is not None else f"(pas de partie {'HTML' if html else 'texte'})", nl=False)


@mailbox_app.command("serve")
def mailbox_serve(host: str = typer.Option(None, "--host", help="Adresse (défaut : USINE_SMTP_HOST, boucle locale seulement)"),
                  port: int = typer.Option(None, "--port", help="Port (défaut : USINE_SMTP_PORT)")):
    """Run the local SMTP sink alone, in the foreground (what `usine serve` starts). Ctrl-C stops it."""
    from notifications.sink import main as sink_main
    from services.config import get_settings

    settings = get_settings()
    raise typer.Exit(sink_main(["--host", host or settings.smtp_host, "--port", str(port or settings.smtp_port),
                                "--dir", str(mailbox_dir(settings))]))


# -- usine serve ---------------------------------------------------------------------------------------

class _Child:
    def __init__(self, name: str, argv: list[str], env: dict, cwd: Path):
        self.name = name
        # A session of its own: Ctrl-C in the terminal reaches only `usine serve`, which then
        # stops the children in order; the whole group is signalled (the server's own children).
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float) -> int | None:
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if not self.alive():
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                typer.echo(f"[usine serve] {self.name} ne s'arrête pas après {sig.name}…", err=True)
        # Whatever it left in its group (its own workers) goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.process.returncode


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _Stop(Exception):
    pass


def start_mailbox_sink(settings, mode: bool | None, env: dict, cwd: Path, timeout: float = 15) -> "_Child | None":
    """Start the local SMTP sink (`python -m notifications.sink`) as `usine serve`'s child when
    `notifications.sink.sink_decision` says so; None when it is not needed. `ValueError`: asked
    for (`--smtp-sink`) but impossible; `RuntimeError`: it did not come up."""
    from notifications.sink import port_in_use, sink_decision

    start, reason = sink_decision(host=settings.smtp_host, port=settings.smtp_port, starttls=settings.smtp_starttls,
                                  username=settings.smtp_username, mode=mode)
    typer.echo(f"[usine serve] {reason}")
    if not start:
        return None
    directory = mailbox_dir(settings).resolve()
    child = _Child("serveur SMTP local", [sys.executable, "-m", "notifications.sink", "--host", settings.smtp_host,
                                    "--port", str(settings.smtp_port), "--dir", str(directory)], env, cwd)
    deadline = time.monotonic() + timeout
    while not port_in_use(settings.smtp_host, settings.smtp_port):
        if not child.alive() or time.monotonic() > deadline:
            child.stop(timeout=5)
            raise RuntimeError(f"la boîte locale n'a pas démarré sur {settings.smtp_host}:{settings.smtp_port}")
        time.sleep(0.2)
    typer.echo(f"[usine serve] boîte locale : SMTP {settings.smtp_host}:{settings.smtp_port} → {directory} "
               "(`usine mailbox list`, `usine mailbox show N`)")
    return child


def serve_command(host: str = typer.Option("127.0.0.1", "--host", help="Adresse d'écoute"),
                  prefect_port: int = typer.Option(None, "--prefect-port", help="Port du serveur Prefect (défaut : USINE_PREFECT_PORT, 4200)"),
                  api_port: int = typer.Option(None, "--api-port", help="Port de l'API (défaut : USINE_API_PORT, 8000)"),
                  api: bool = typer.Option(True, "--api/--no-api", help="Démarrer aussi l'API (api.app)"),
                  migrate: bool = typer.Option(True, "--migrate/--no-migrate", help="Mettre la base à jour au démarrage"),
                  smtp_sink: bool = typer.Option(None, "--smtp-sink/--no-smtp-sink",
                                                 help="Boîte locale (serveur SMTP qui garde chaque message en .eml sous "
                                                      "var/mailbox/). Défaut : démarrée quand USINE_SMTP_HOST est cette "
                                                      "machine, sans STARTTLS ni identifiant, et que rien n'écoute sur "
                                                      "USINE_SMTP_PORT"),
                  startup_timeout: float = typer.Option(120, "--startup-timeout", help="Secondes d'attente du serveur Prefect")):
    """Start everything: a local SMTP sink when no mail server is there, a local Prefect server
    (database under ./var/prefect), the flows served on their schedules (Europe/Paris), and the
    API. Ctrl-C (or SIGTERM) stops it all."""
    from services.config import get_settings

    settings = get_settings()
    prefect_port = prefect_port or settings.prefect_port
    api_port = api_port or settings.api_port
    cwd = Path.cwd()
    var = Path(settings.var_dir).resolve()
    prefect_home = var / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{host}:{prefect_port}/api"
    env = dict(os.environ)
    env.update({
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(prefect_port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("PREFECT_PROFILES_PATH", None)

    if migrate:
        from db.migrate import upgrade

        typer.echo(f"[usine serve] base : mise à jour de {settings.database_url}")
        upgrade(settings.database_url)

    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signal.Signals(signum).name
        raise _Stop()

    children: list[_Child] = []

    def run() -> int:
        try:
            sink = start_mailbox_sink(settings, smtp_sink, env, cwd)
        except ValueError as exc:
            typer.echo(f"[usine serve] {exc}", err=True)
            return 2
        except RuntimeError as exc:
            typer.echo(f"[usine serve] {exc}", err=True)
            return 1
        if sink is not None:
            children.append(sink)
        prefect_bin = Path(sys.executable).with_name("prefect")
        server_argv = ([str(prefect_bin)] if prefect_bin.exists() else [sys.executable, "-m", "prefect"]) + \
            ["server", "start", "--host", host, "--port", str(prefect_port), "--analytics-off"]
        typer.echo(f"[usine serve] serveur Prefect : http://{host}:{prefect_port} (PREFECT_HOME={prefect_home})")
        server = _Child("serveur Prefect", server_argv, env, cwd)
        children.append(server)
        deadline = time.monotonic() + startup_timeout
        while not _healthy(f"{api_url}/health"):
            if not server.alive():
                typer.echo("[usine serve] le serveur Prefect s'est arrêté au démarrage.", err=True)
                return 1
            if time.monotonic() > deadline:
                typer.echo(f"[usine serve] le serveur Prefect ne répond pas après {startup_timeout:.0f} s.", err=True)
                return 1
            time.sleep(0.5)
        typer.echo("[usine serve] serveur Prefect prêt ; déploiements servis : "
                   + ", ".join(f"{s.flow} ({s.effective_cron()}, Europe/Paris)" for s in _schedules()))
        # The API and the flows share one metrics directory (prometheus-client's multiprocess
        # mode): the sweeps the flow runs time show at the API's /metrics. Emptied here, at
        # each start (counters start again from zero, as after any restart). JSON log lines.
        observed_env = {**env, "USINE_LOG_FORMAT": env.get("USINE_LOG_FORMAT", "json"),
                        "PROMETHEUS_MULTIPROC_DIR": env.get("PROMETHEUS_MULTIPROC_DIR")
                        or _metrics_dir(var)}
        children.append(_Child("flows", [sys.executable, "-m", "workflows.deployments"], observed_env, cwd))
        if api:
            typer.echo(f"[usine serve] API : http://{host}:{api_port}")
            from api.server import api_command

            children.append(_Child("API", api_command(host=host, port=api_port), observed_env, cwd))
        typer.echo("[usine serve] prêt — Ctrl-C pour tout arrêter.")
        while True:
            for child in children:
                if not child.alive():
                    typer.echo(f"[usine serve] {child.name} s'est arrêté (code {child.process.returncode}) : arrêt.",
                               err=True)
                    return 1
            time.sleep(0.5)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        exit_code = run()
    except _Stop:
        typer.echo(f"\n[usine serve] {stopping['signal']} reçu : arrêt.")
        exit_code = 0
    finally:
        # Further Ctrl-C are ignored while stopping: the children are stopped, never abandoned.
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        for child in reversed(children):  # the flows and the API first, the server last
            code = child.stop(timeout=30)
            typer.echo(f"[usine serve] {child.name} arrêté (code {code}).")
        for s, handler in previous.items():
            signal.signal(s, handler)
    raise typer.Exit(exit_code)


def _metrics_dir(var: Path) -> str:
    from services.metrics import prepare_multiprocess_dir

    return prepare_multiprocess_dir(str(var / "metrics"))


def _schedules():
    from workflows.deployments import SCHEDULES

    return SCHEDULES


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("sweep")(sweep_command)
    app.command("deliver")(deliver_command)
    app.command("digest")(digest_command)
    app.command("dashboard")(dashboard_command)
    app.add_typer(notifications_app, name="notifications")
    app.add_typer(mailbox_app, name="mailbox")


__all__ = ["register"]
