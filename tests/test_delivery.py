"""Delivery of the outbox to a real SMTP server (aiosmtpd on 127.0.0.1): every message once,
even when the server fails mid-batch or the process dies; retries with backoff; dead letters
kept and visible."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.clock import FrozenClock
from services.delivery import backoff, deliver, requeue_dead
from tests.sweep_support import company, notifications, run

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smtp():
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink()
    yield sink
    sink.stop()


def queue_acknowledgements(uow_factory, clock, actors, count: int) -> None:
    """`count` candidacies, hence `count` acknowledgements queued in the outbox."""
    from services import commands

    for n in range(1, count + 1):
        run(uow_factory, clock, "2021-02-22T10:00:00+01:00", commands.submit_candidacy, actors["applicant"],
            programme_id="occitanie-prif", company=company(n), de_minimis_prior=[])


def at(iso: str) -> FrozenClock:
    return FrozenClock(datetime.fromisoformat(iso))


NOON = "2021-02-22T12:00:00+01:00"


def statuses(uow_factory) -> Counter:
    return Counter(n.status for n in notifications(uow_factory))


def test_each_queued_letter_arrives_once_in_french_and_is_marked_sent(uow_factory, clock, actors, smtp):
    queue_acknowledgements(uow_factory, clock, actors, 3)
    report = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON))
    assert (report.sent, report.retried, report.dead) == (3, 0, 0)
    assert sorted(r.to for r in smtp.received) == [f"contact@atelier-{n}.example.fr" for n in (1, 2, 3)]
    letter = next(r for r in smtp.received if r.to == "contact@atelier-1.example.fr")
    assert letter.kind == "candidacy_received"
    assert letter.subject.endswith("Accusé de réception de votre candidature")
    assert "Nous accusons réception de la candidature de l'entreprise Atelier 1 SAS" in letter.text
    assert "déposée le 22 février 2021 à 10\u00a0h\u00a000" in letter.text
    assert "<strong>Atelier 1 SAS</strong>" in letter.html
    sent = {n.recipient_address: n for n in notifications(uow_factory)}
    assert all(n.status == "sent" and n.sent_at is not None and n.attempts == 1 for n in sent.values())
    assert letter.message_id == f"<usine.{sent[letter.to].dedupe_key.replace(':', '-')}@usine.invalid>"
    # Nothing is due any more: a second run sends nothing.
    assert deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON)).sent == 0
    assert len(smtp.received) == 3


def test_when_the_server_fails_after_k_messages_a_rerun_delivers_every_message_exactly_once(
        uow_factory, clock, actors, smtp):
    queue_acknowledgements(uow_factory, clock, actors, 10)
    smtp.handler.fail_after = 4
    first = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON))
    # Four accepted and recorded at once; then "451 try later" three times in a row: the server
    # is taken as down, the rest of the batch is released without counting an attempt.
    assert (first.sent, first.retried, first.released) == (4, 3, 3)
    assert first.stopped
    assert statuses(uow_factory) == {"sent": 4, "queued": 6}
    smtp.handler.fail_after = None
    # The three that failed wait for their backoff (1 minute); the three released go at once.
    assert deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON)).sent == 3
    later = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at("2021-02-22T12:01:00+01:00"))
    assert later.sent == 3
    assert statuses(uow_factory) == {"sent": 10}
    assert Counter(r.to for r in smtp.received) == {f"contact@atelier-{n}.example.fr": 1 for n in range(1, 11)}
    retried = [n for n in notifications(uow_factory) if n.attempts == 2]
    assert len(retried) == 3 and all(n.last_error is None for n in retried)


class CrashingSender:
    """The real SMTP sender, but the process "dies" (an unexpected error) after k messages."""

    def __init__(self, real, k: int):
        self.real, self.k, self.sent = real, k, 0
        self.envelope_from = real.envelope_from

    def connect(self):
        outer = self

        class _Connection:
            def __init__(self, inner):
                self.inner = inner

            def send(self, email):
                if outer.sent == outer.k:
                    raise RuntimeError("process killed")
                self.inner.send(email)
                outer.sent += 1

        from contextlib import contextmanager

        @contextmanager
        def session():
            with self.real.connect() as inner:
                yield _Connection(inner)
        return session()


def test_a_delivery_that_dies_mid_batch_loses_nothing_and_resends_nothing_already_sent(
        uow_factory, clock, actors, smtp):
    queue_acknowledgements(uow_factory, clock, actors, 7)
    with pytest.raises(RuntimeError):
        deliver(uow_factory=uow_factory, sender=CrashingSender(smtp.sender(), 5), clock=at(NOON))
    assert len(smtp.received) == 5
    assert statuses(uow_factory) == {"sent": 5, "queued": 2}
    report = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON))
    assert report.sent == 2
    assert Counter(r.to for r in smtp.received) == {f"contact@atelier-{n}.example.fr": 1 for n in range(1, 8)}


def test_a_letter_whose_claim_was_lost_with_the_process_goes_out_when_its_lease_expires(
        uow_factory, clock, actors, smtp):
    from services.delivery import _claim

    queue_acknowledgements(uow_factory, clock, actors, 2)
    # A delivery run claimed the batch, then was killed before sending anything.
    assert len(_claim(uow_factory, at(NOON).now(), 50, timedelta(minutes=10))) == 2
    assert deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON)).sent == 0
    assert deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at("2021-02-22T12:10:00+01:00")).sent == 2
    assert len(smtp.received) == 2


def test_temporary_failures_are_retried_with_exponential_backoff_then_given_up(uow_factory, clock, actors, smtp):
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert backoff(20) == timedelta(hours=6)
    queue_acknowledgements(uow_factory, clock, actors, 1)
    smtp.handler.fail_after = 0
    instant = datetime.fromisoformat(NOON)
    for attempt in range(1, 4):
        report = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=FrozenClock(instant), max_attempts=4)
        assert report.retried == 1
        [row] = notifications(uow_factory)
        assert (row.status, row.attempts) == ("queued", attempt)
        assert row.next_attempt_at == instant + backoff(attempt)
        assert "451" in row.last_error
        # Not before its time.
        assert deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=FrozenClock(instant)).retried == 0
        instant = row.next_attempt_at
    report = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=FrozenClock(instant), max_attempts=4)
    assert report.dead == 1
    [row] = notifications(uow_factory)
    assert (row.status, row.attempts) == ("dead", 4)
    assert smtp.received == []


def test_a_letter_refused_for_good_is_a_dead_letter_kept_with_its_reason_and_can_be_requeued(
        uow_factory, clock, actors, smtp):
    queue_acknowledgements(uow_factory, clock, actors, 3)
    smtp.handler.refuse = {"contact@atelier-2.example.fr"}
    report = deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON))
    assert (report.sent, report.dead) == (2, 1)
    [dead] = [n for n in notifications(uow_factory) if n.status == "dead"]
    assert dead.recipient_address == "contact@atelier-2.example.fr"
    assert "550" in dead.last_error and dead.attempts == 1
    assert dead.body_text  # the letter is kept as rendered
    smtp.handler.refuse = set()
    assert requeue_dead(uow_factory=uow_factory, clock=at(NOON), notification_id=dead.id)
    assert deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON)).sent == 1
    assert Counter(r.to for r in smtp.received) == {f"contact@atelier-{n}.example.fr": 1 for n in (1, 2, 3)}


def test_two_deliveries_at_once_send_each_letter_once(uow_factory, clock, actors, smtp):
    queue_acknowledgements(uow_factory, clock, actors, 12)
    start = threading.Barrier(2)
    reports, failures = [], []

    def one_run():
        try:
            start.wait()
            reports.append(deliver(uow_factory=uow_factory, sender=smtp.sender(), clock=at(NOON), batch_size=3))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert sum(r.sent for r in reports) == 12
    assert Counter(r.to for r in smtp.received) == {f"contact@atelier-{n}.example.fr": 1 for n in range(1, 13)}


def test_the_command_line_lists_dead_letters_and_runs_sweeps_and_deliveries(database_url, uow_factory, clock,
                                                                            actors, smtp, tmp_path):
    queue_acknowledgements(uow_factory, clock, actors, 2)
    smtp.handler.refuse = {"contact@atelier-1.example.fr"}
    env = {**os.environ, "USINE_DATABASE_URL": database_url, "USINE_SMTP_HOST": "127.0.0.1",
           "USINE_SMTP_PORT": str(smtp.port), "USINE_SMTP_FROM": "Usine <ne-pas-repondre@usine.invalid>"}
    usine = [sys.executable, "-m", "cli.main"]

    def cli(*args):
        return subprocess.run(usine + list(args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    delivered = cli("deliver", "--at", NOON)
    assert delivered.returncode == 0, delivered.stderr
    assert '"sent": 1' in delivered.stdout and '"dead": 1' in delivered.stdout
    dead = cli("notifications", "dead")
    assert "contact@atelier-1.example.fr" in dead.stdout and "550" in dead.stdout
    swept = cli("sweep", "--at", "2021-03-08T06:00:00+01:00")
    assert swept.returncode == 0, swept.stderr
    assert '"as_of": "2021-03-08"' in swept.stdout
    bad = cli("sweep", "--at", "2021-03-08T06:00:00")
    assert bad.returncode == 2 and "décalage" in bad.stderr
