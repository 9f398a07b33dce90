"""The local mailbox of `usine serve`: a real SMTP server (aiosmtpd, `notifications.sink`) that
keeps every message as an .eml file under var/mailbox/, fed by the project's own SMTP sender and
delivery (`notifications.smtp`, `services.delivery`); when `usine serve` starts it; and
`usine mailbox list|show`, which reads it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from cli.flows import mailbox_dir, start_mailbox_sink
from db import models as m
from notifications.email import OutgoingEmail, make_message_id
from notifications.sink import Mailbox, MailboxSink, is_loopback, port_in_use, sink_decision
from notifications.smtp import SmtpSender
from services import users as users_service
from services.clock import FrozenClock
from services.delivery import deliver
from services.demo import DEMO_NOW, load_demo
from tests.smtp_sink import FROM, free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fast_passwords(monkeypatch):
    monkeypatch.setattr(users_service, "PASSWORD_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _eml(path: Path):
    with open(path, "rb") as fh:
        return BytesParser(policy=email_policy.default).parse(fh)


def _outbox(uow_factory) -> dict:
    with uow_factory() as uow:
        return dict(uow.session.execute(select(m.Notification.status, func.count())
                                        .group_by(m.Notification.status)).all())


def test_the_sink_keeps_every_demo_letter_the_delivery_sends(uow_factory, tmp_path, fast_passwords):
    load_demo(uow_factory, dossiers=14, seed=5)
    queued = _outbox(uow_factory)["queued"]
    assert queued > 20
    box_dir = tmp_path / "var" / "mailbox"
    port = free_port()
    clock = FrozenClock(DEMO_NOW)
    sender = SmtpSender("127.0.0.1", port, FROM, timeout=10)
    with MailboxSink(box_dir, port=port):
        first = deliver(uow_factory=uow_factory, sender=sender, clock=clock, batch_size=10, max_batches=1)
    assert first.sent == 10 and first.stopped is None
    # A restart of the sink goes on numbering after the files already there.
    with MailboxSink(box_dir, port=port):
        rest = deliver(uow_factory=uow_factory, sender=sender, clock=clock, batch_size=10)
    assert rest.stopped is None and first.sent + rest.sent == queued
    assert _outbox(uow_factory) == {"sent": queued}

    files = sorted(p.name for p in box_dir.iterdir())
    assert len(files) == queued and not [n for n in os.listdir(box_dir) if n.startswith(".")]
    assert [int(n[:8]) for n in files] == list(range(1, queued + 1))
    # The names sort by arrival: the order the delivery sent them (oldest queued first).
    with uow_factory() as uow:
        sent_order = [str(i) for i in uow.session.scalars(
            select(m.Notification.id).order_by(m.Notification.created_at, m.Notification.id))]
        rows = {str(n.id): SimpleNamespace(recipient_address=n.recipient_address, dedupe_key=n.dedupe_key,
                                           subject=n.subject, body_text=n.body_text)
                for n in uow.session.scalars(select(m.Notification))}
    arrived = [str(_eml(box_dir / n)["X-Usine-Notification-Id"]) for n in files]
    assert sorted(arrived, key=sent_order.index) == arrived
    # Each file is the message as sent, with the envelope's recipient.
    for name in files[:5]:
        msg = _eml(box_dir / name)
        row = rows[str(msg["X-Usine-Notification-Id"])]
        assert msg["Delivered-To"] == row.recipient_address
        assert msg["Message-ID"].strip() == make_message_id(row.dedupe_key, "usine.invalid")
        assert str(msg["Subject"]) == row.subject
        assert msg.get_body(("plain",)).get_content().strip() == row.body_text.strip()

    listed = Mailbox(box_dir).list(limit=3)
    assert [x.number for x in listed] == [queued, queued - 1, queued - 2]
    assert Mailbox(box_dir).get(1).body() is not None and Mailbox(box_dir).get(queued + 1) is None


def test_a_message_is_written_before_it_is_accepted_and_non_ascii_survives(tmp_path):
    port = free_port()
    with MailboxSink(tmp_path, port=port) as sink:
        SmtpSender("127.0.0.1", port, FROM).send(OutgoingEmail(
            to_address="elodie.durand@exemple.fr", to_name="Élodie Durand", subject="Relance — pièces manquantes",
            text="Bonjour,\nil manque l'attestation fiscale.\n", html="<p>Bonjour, il manque l'attestation.</p>",
            message_id="<usine.test-1@usine.invalid>"))
        assert sink.writer.written == 1  # on disk once the sender got its 250
    [message] = Mailbox(tmp_path).list()
    assert message.to == "Élodie Durand <elodie.durand@exemple.fr>"
    assert message.subject == "Relance — pièces manquantes"
    assert "attestation fiscale" in Mailbox(tmp_path).get().body()


def test_when_usine_serve_starts_a_sink(tmp_path):
    busy = MailboxSink(tmp_path, port=free_port()).start()
    try:
        free = free_port()
        assert sink_decision(host="127.0.0.1", port=free)[0] is True
        assert sink_decision(host="localhost", port=free)[0] is True
        started, why = sink_decision(host="127.0.0.1", port=busy.port)
        assert not started and "écoute déjà" in why
        assert sink_decision(host="smtp.region.fr", port=25)[0] is False
        assert sink_decision(host="127.0.0.1", port=free, starttls=True)[0] is False
        assert sink_decision(host="127.0.0.1", port=free, username="usine")[0] is False
        assert sink_decision(host="127.0.0.1", port=free, mode=False)[0] is False
        assert sink_decision(host="127.0.0.1", port=free, mode=True)[0] is True
        with pytest.raises(ValueError, match="écoute déjà"):
            sink_decision(host="127.0.0.1", port=busy.port, mode=True)
        with pytest.raises(ValueError, match="pas sur cette machine"):
            sink_decision(host="smtp.region.fr", port=25, mode=True)
    finally:
        busy.stop()
    assert is_loopback("127.0.0.2") and is_loopback("::1") and not is_loopback("10.0.0.1")


def test_usine_serve_sink_child_receives_and_stops_cleanly(tmp_path):
    settings = SimpleNamespace(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False, smtp_username=None,
                               var_dir=str(tmp_path / "var"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = start_mailbox_sink(settings, None, env, tmp_path)
    assert child is not None and child.alive()
    try:
        # Something listens now: a second `usine serve` would leave the port to it.
        assert start_mailbox_sink(settings, None, env, tmp_path) is None
        SmtpSender("127.0.0.1", settings.smtp_port, FROM).send(OutgoingEmail(
            to_address="contact@atelier-42.example.fr", to_name="Contact", subject="Candidature reçue",
            text="Bonjour.\n", html="<p>Bonjour.</p>", message_id="<usine.k@usine.invalid>"))
    finally:
        code = child.stop(timeout=10)
    assert code == 0
    assert not port_in_use("127.0.0.1", settings.smtp_port)
    assert [x.subject for x in Mailbox(mailbox_dir(settings)).list()] == ["Candidature reçue"]


def _usine(tmp_path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "USINE_DATABASE_URL": f"sqlite:///{tmp_path / 'u.db'}",
           "USINE_STORAGE_DIR": str(tmp_path / "docs"), "USINE_VAR_DIR": str(tmp_path / "var"), **extra_env}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)


def test_usine_deliver_then_usine_mailbox_list_and_show(tmp_path):
    port = free_port()
    smtp = {"USINE_SMTP_PORT": str(port), "USINE_CLOCK_START": "2022-06-15T09:00:00+02:00"}
    assert _usine(tmp_path, "db", "upgrade").returncode == 0
    assert _usine(tmp_path, "demo", "--dossiers", "12", **smtp).returncode == 0
    empty = _usine(tmp_path, "mailbox", "list")
    assert empty.returncode == 0 and "aucun message" in empty.stdout
    with MailboxSink(tmp_path / "var" / "mailbox", port=port):
        delivered = _usine(tmp_path, "deliver", **smtp)
    assert delivered.returncode == 0, delivered.stderr
    sent = json.loads(delivered.stdout)["sent"]
    assert sent > 10

    listing = _usine(tmp_path, "mailbox", "list", "--limit", "3")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert f"{sent} message(s), les 3 plus récents" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == [str(sent), str(sent - 1), str(sent - 2)]
    # Dated on the workspace's clock (the demo lives in June 2022), not on the machine's.
    assert all(line.split()[1] == "15/06/2022" for line in lines[1:]), lines
    # Filtered: the count is the filter's, against the whole box.
    filtered = _usine(tmp_path, "mailbox", "list", "--to", "nobody-at-all")
    assert f"aucun message pour « nobody-at-all » ({sent} en tout)" in filtered.stdout

    shown = _usine(tmp_path, "mailbox", "show", "1")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Message n° 1 — reçu le ")
    assert "Subject : " in shown.stdout and "X-Usine-Notification-Kind : " in shown.stdout
    assert "Rappelez la référence " in shown.stdout
    html = _usine(tmp_path, "mailbox", "show", "1", "--html")
    assert "<" in html.stdout and html.returncode == 0
    latest = _usine(tmp_path, "mailbox", "show")
    assert latest.stdout.startswith(f"Message n° {sent} ")
    missing = _usine(tmp_path, "mailbox", "show", str(sent + 1))
    assert missing.returncode == 1 and "pas de message" in missing.stderr
