"""A local SMTP sink: an SMTP server (aiosmtpd) that delivers nothing and keeps every message it
accepts as an ``.eml`` file, so that a demo or training workspace without a mail server still
sends its letters for real (over SMTP, through `services.delivery`) and a person can read them.

    sink = MailboxSink(Path("var/mailbox"), host="127.0.0.1", port=8025)
    sink.start()            # a thread of this process; `python -m notifications.sink` runs one alone
    ...
    sink.stop()

    box = Mailbox(Path("var/mailbox"))
    box.list(limit=20)      # newest first
    box.get(3)              # the third message received

One file per message, written before the server answers 250 (a message the sender saw accepted
is on disk), named ``{number:08d}-{received UTC:%Y%m%dT%H%M%S}Z.eml``: the names sort in the
order the messages arrived, and the numbering goes on across restarts. The file is the message
as received, after two lines a mail server's local delivery adds: ``Return-Path`` (the envelope
sender) and ``Delivered-To`` (each envelope recipient). A write is atomic (a temporary dotfile,
then a hard link under the final name), so a reader never sees half a message.

`usine serve` starts one (`python -m notifications.sink`) when the configured SMTP server is on
this machine and nothing listens on its port (`sink_decision`); `usine mailbox list|show` reads
the files."""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

__all__ = ["MailboxSink", "Mailbox", "MailboxMessage", "sink_decision", "is_loopback", "port_in_use"]

NAME = re.compile(r"^(\d{8})-(\d{8}T\d{6})Z\.eml$")


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1): a server only this machine
    reaches. Other names are not resolved: a name is a mail server somewhere else."""
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port_in_use(host: str, port: int, timeout: float = 0.5) -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def sink_decision(*, host: str, port: int, starttls: bool = False, username: str | None = None,
                  mode: bool | None = None) -> tuple[bool, str]:
    """Whether `usine serve` starts the local sink, and why (French, for its log).

    `mode` None (automatic): only when the SMTP server is this machine's (loopback), without
    STARTTLS or login (a real server's settings), and nothing listens on the port yet. `mode`
    True (`--smtp-sink`): the same conditions are required, and a failed one is an error
    (`ValueError`) instead of a reason to skip; False (`--no-smtp-sink`): never."""
    where = f"{host}:{port}"
    if mode is False:
        return False, f"boîte locale désactivée (--no-smtp-sink) ; SMTP : {where}"
    refusal = None
    if not is_loopback(host):
        refusal = f"le serveur SMTP configuré ({where}) n'est pas sur cette machine"
    elif starttls or username:
        refusal = f"le serveur SMTP configuré ({where}) demande STARTTLS ou un identifiant : c'est un vrai serveur"
    elif port_in_use(host, port):
        refusal = f"un serveur écoute déjà sur {where} : c'est lui qui reçoit les messages"
    if refusal is None:
        return True, f"aucun serveur SMTP sur {where} : boîte locale démarrée"
    if mode is True:
        raise ValueError(f"--smtp-sink : {refusal}.")
    return False, f"SMTP : {refusal} ; pas de boîte locale"


# -- writing -----------------------------------------------------------------------------------------

class _MailboxWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        numbers = [int(mt.group(1)) for p in self.directory.iterdir() if (mt := NAME.match(p.name))]
        self._next = max(numbers, default=0) + 1
        self.written = 0

    def write(self, content: bytes, mail_from: str, rcpt_tos: list[str]) -> Path:
        prefix = f"Return-Path: <{mail_from}>\r\n".encode("utf-8", "replace")
        prefix += b"".join(f"Delivered-To: {r}\r\n".encode("utf-8", "replace") for r in rcpt_tos)
        data = prefix + content
        with self._lock:
            tmp = self.directory / f".incoming-{os.getpid()}-{threading.get_ident()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                while True:
                    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
                    final = self.directory / f"{self._next:08d}-{stamp}Z.eml"
                    self._next += 1
                    try:
                        os.link(tmp, final)  # never over an existing file (another sink on the directory)
                        break
                    except FileExistsError:
                        continue
            finally:
                tmp.unlink(missing_ok=True)
            self.written += 1
        return final


class _Handler:
    def __init__(self, writer: _MailboxWriter) -> None:
        self.writer = writer

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        try:
            path = self.writer.write(content, envelope.mail_from or "", list(envelope.rcpt_tos))
        except OSError as exc:  # disk full, permissions: the sender keeps the message and retries
            return f"451 4.3.0 Mailbox write failed: {exc.strerror or exc}"
        return f"250 2.0.0 Message accepted: {path.name}"


class MailboxSink:
    """An SMTP server on host:port (a thread of this process) writing what it accepts under
    `directory`. No TLS, no authentication, no relaying: a local sink, loopback only."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 8025) -> None:
        from aiosmtpd.controller import Controller

        if not is_loopback(host):
            raise ValueError(f"the mailbox sink listens on a loopback address only, not {host!r}")
        self.writer = _MailboxWriter(Path(directory))
        self.host = "127.0.0.1" if host.lower().startswith("localhost") else host.strip("[]")
        self.port = port
        self._controller = Controller(_Handler(self.writer), hostname=self.host, port=port,
                                      enable_SMTPUTF8=True, ident="Usine mailbox sink")

    @property
    def directory(self) -> Path:
        return self.writer.directory

    def start(self) -> "MailboxSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "MailboxSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- reading -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MailboxMessage:
    number: int
    path: Path
    received_at: datetime
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def dated(self) -> datetime:
        """When the service sent it, by its own clock (the Date header: a demo workspace's
        letters are dated in its June 2022), else when the sink received it."""
        from email.utils import parsedate_to_datetime

        try:
            value = parsedate_to_datetime(str(self.message.get("Date", "")))
        except (TypeError, ValueError):
            return self.received_at
        return value if value.tzinfo is not None else self.received_at

    @property
    def kind(self) -> str:
        return str(self.message.get("X-Usine-Notification-Kind", ""))

    def body(self, subtype: str = "plain") -> str | None:
        part = self.message.get_body((subtype,))
        return None if part is None else part.get_content()


class Mailbox:
    """The messages a sink kept under `directory`, in the order they arrived."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def paths(self) -> list[tuple[int, Path, datetime]]:
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            mt = NAME.match(p.name)
            if mt:
                at = datetime.strptime(mt.group(2), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
                found.append((int(mt.group(1)), p, at))
        return sorted(found)

    def __len__(self) -> int:
        return len(self.paths())

    def _read(self, number: int, path: Path, at: datetime, headers_only: bool) -> MailboxMessage:
        with open(path, "rb") as fh:
            message = BytesParser(policy=email_policy.default).parse(fh, headersonly=headers_only)
        return MailboxMessage(number, path, at, message)

    def list(self, *, limit: int | None = 20, to: str | None = None) -> list[MailboxMessage]:
        """The latest messages, newest first (headers only); `to`: a part of the recipient."""
        out = []
        for number, path, at in reversed(self.paths()):
            msg = self._read(number, path, at, headers_only=True)
            if to and to.lower() not in msg.to.lower():
                continue
            out.append(msg)
            if limit and len(out) >= limit:
                break
        return out

    def get(self, number: int | None = None) -> MailboxMessage | None:
        """Message `number` (the latest when None), or None."""
        paths = self.paths()
        if not paths:
            return None
        if number is None:
            return self._read(*paths[-1], headers_only=False)
        for n, path, at in paths:
            if n == number:
                return self._read(n, path, at, headers_only=False)
        return None


# -- python -m notifications.sink ---------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Boîte locale : un serveur SMTP qui garde chaque message en .eml.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", required=True, type=Path, help="répertoire des messages (ex. var/mailbox)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sink = MailboxSink(args.dir, host=args.host, port=args.port)
    try:
        sink.start()
    except Exception as exc:  # noqa: BLE001 - port taken, address unavailable: say it, exit 1
        print(f"[boîte locale] impossible d'écouter sur {args.host}:{args.port} : {exc}", file=sys.stderr)
        return 1
    print(f"[boîte locale] SMTP {sink.host}:{sink.port} → {sink.directory} "
          f"({len(Mailbox(sink.directory))} message(s) déjà reçu(s))", flush=True)
    try:
        while not stop.wait(1):
            pass
    finally:
        sink.stop()
        print(f"[boîte locale] arrêtée : {sink.writer.written} message(s) reçu(s) depuis son démarrage, "
              f"{len(Mailbox(sink.directory))} dans la boîte.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
