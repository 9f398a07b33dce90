"""Delivery over real SMTP (an aiosmtpd server on 127.0.0.1) and through the in-memory fake."""
from __future__ import annotations

import socket
from email import message_from_bytes
from email import policy as email_policy

import pytest
from aiosmtpd.controller import Controller  # noqa: E402

from notifications.email import DeliveryError, OutgoingEmail, build_mime, make_message_id  # noqa: E402
from notifications.fake import InMemorySender  # noqa: E402
from notifications.rendering import render  # noqa: E402
from notifications.smtp import SmtpSender  # noqa: E402

FROM = "Région Occitanie — Industrie du Futur <ne-pas-repondre@usine.invalid>"


# --------------------------------------------------------------------------- server fixtures


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Collector:
    """Accepts every message and keeps its envelope (and the client port, i.e. the session)."""

    def __init__(self) -> None:
        self.envelopes = []
        self.peers = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 2.0.0 Message accepted"


class RefuseRecipients:
    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return self.reply


class DropFirstMessage(Collector):
    """Answers 421 (closing) to the first message, then accepts: a server limiting sessions."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    async def handle_DATA(self, server, session, envelope):
        if self.dropped == 0:
            self.dropped += 1
            return "421 4.3.2 Service shutting down"
        return await super().handle_DATA(server, session, envelope)


def start_server(handler):
    # The probed port may be taken between probe and bind by another process: retry.
    for _ in range(5):
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        try:
            controller.start()
        except Exception:  # noqa: BLE001 - aiosmtpd re-raises the bind error as is
            continue
        return controller
    pytest.fail("could not start an SMTP server on 127.0.0.1")


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = start_server(handler)
    yield controller, handler
    controller.stop()


@pytest.fixture
def sender(smtp_server) -> SmtpSender:
    controller, _ = smtp_server
    return SmtpSender(controller.hostname, controller.port, FROM, timeout=5)


def server_with(handler):
    controller = start_server(handler)
    return controller, SmtpSender(controller.hostname, controller.port, FROM, timeout=5)


# --------------------------------------------------------------------------- messages


def letter(n: int = 1, to: str = "claire.dupont@example.fr") -> OutgoingEmail:
    return OutgoingEmail(
        to_address=to,
        to_name="Claire Dupont-Hélène",
        subject=f"Dossier OCC-2021-004{n} — Décision de recevabilité : candidature déclarée recevable",
        text=f"Madame, Monsieur,\n\nVotre dossier n° {n} est déclaré recevable. Montant : 17\u00a0500,00\u00a0€.\n",
        html=f"<!DOCTYPE html><html lang=\"fr\"><body><p>Votre dossier n° {n} est <strong>déclaré recevable</strong>.</p></body></html>\n",
        message_id=make_message_id(f"notification-{n}", "usine.invalid"),
        headers={"X-Usine-Notification-Kind": "eligibility_decision"},
    )


def lapse_letter() -> OutgoingEmail:
    rendered = render("dossier_lapsed", {
        "dossier": {"reference": "OCC-2021-0099", "programme_id": "occitanie-prif",
                    "programme_name": "Parcours régional Industrie du Futur", "region": "Occitanie",
                    "company_name": "Fonderie de l'Aveyron", "siren": "732829320", "state": "lapsed",
                    "example": False},
        "recipient": {"role": "applicant", "name": "Fonderie de l'Aveyron", "email": "contact@fonderie.example"},
        "reason": "pièces manquantes non transmises dans le délai", "lapsed_on": "2021-03-31",
    })
    return OutgoingEmail.from_rendered(rendered, to_address="contact@fonderie.example",
                                       to_name="Fonderie de l'Aveyron",
                                       message_id=make_message_id(99, "usine.invalid"))


def parsed(envelope):
    return message_from_bytes(envelope.original_content or envelope.content, policy=email_policy.default)


# --------------------------------------------------------------------------- SMTP


def test_two_letters_sent_in_one_session_arrive_intact(smtp_server, sender):
    _, handler = smtp_server
    first, second = letter(1), lapse_letter()
    with sender.connect() as connection:
        connection.send(first)
        connection.send(second)

    assert len(handler.envelopes) == 2
    assert len(set(handler.peers)) == 1  # one SMTP session for the batch
    for envelope, sent in zip(handler.envelopes, (first, second)):
        assert envelope.mail_from == "ne-pas-repondre@usine.invalid"
        assert envelope.rcpt_tos == [sent.to_address]
        message = parsed(envelope)
        assert message["Subject"] == sent.subject  # accents survive RFC 2047 encoding
        assert message["Message-ID"] == sent.message_id
        assert message["To"].addresses[0].addr_spec == sent.to_address
        assert message["To"].addresses[0].display_name == sent.to_name
        assert message["From"].addresses[0].display_name == "Région Occitanie — Industrie du Futur"
        assert message["Date"] is not None
        assert message["Auto-Submitted"] == "auto-generated"
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert text.replace("\r\n", "\n") == sent.text
        assert html.replace("\r\n", "\n") == sent.html

    lapse = parsed(handler.envelopes[1])
    assert "caduc" in lapse.get_body(("plain",)).get_content()
    assert lapse["X-Usine-Notification-Kind"] == "dossier_lapsed"
    # 64 hex digits do not fit a 78-column header line: it is folded, hence the strip().
    assert lapse["X-Usine-Template-Hash"].strip() == second.headers["X-Usine-Template-Hash"]


def test_the_raw_message_is_seven_bit_clean(smtp_server, sender):
    _, handler = smtp_server
    sender.send(letter(3))
    raw = handler.envelopes[0].original_content or handler.envelopes[0].content
    assert raw.isascii()  # quoted-printable bodies, encoded headers: any relay can carry it


def test_a_single_send_opens_and_closes_its_own_session(smtp_server, sender):
    _, handler = smtp_server
    sender.send(letter(1))
    sender.send(letter(2))
    assert len(handler.envelopes) == 2
    assert len(set(handler.peers)) == 2


def test_a_resent_letter_carries_the_same_message_id(smtp_server, sender):
    _, handler = smtp_server
    sender.send(letter(7))
    sender.send(letter(7))
    assert parsed(handler.envelopes[0])["Message-ID"] == parsed(handler.envelopes[1])["Message-ID"]


def test_a_refused_mailbox_is_a_permanent_failure():
    controller, sender = server_with(RefuseRecipients("550 5.1.1 Mailbox unavailable"))
    try:
        with pytest.raises(DeliveryError) as caught:
            sender.send(letter())
    finally:
        controller.stop()
    assert caught.value.permanent is True
    assert caught.value.code == 550
    assert "Mailbox unavailable" in caught.value.detail


def test_a_greylisted_recipient_is_a_temporary_failure():
    controller, sender = server_with(RefuseRecipients("451 4.7.1 Greylisted, try again later"))
    try:
        with pytest.raises(DeliveryError) as caught:
            sender.send(letter())
    finally:
        controller.stop()
    assert caught.value.permanent is False
    assert caught.value.code == 451


def test_a_closed_port_is_a_temporary_failure():
    port = free_port()  # bound then released: nothing listens there
    sender = SmtpSender("127.0.0.1", port, FROM, timeout=2)
    with pytest.raises(DeliveryError) as caught:
        sender.send(letter())
    assert caught.value.permanent is False


def test_a_session_closed_by_the_server_is_reopened_for_the_rest_of_the_batch():
    handler = DropFirstMessage()
    controller, sender = server_with(handler)
    try:
        with sender.connect() as connection:
            with pytest.raises(DeliveryError) as caught:
                connection.send(letter(1))
            connection.send(letter(2))
    finally:
        controller.stop()
    assert caught.value.permanent is False and caught.value.code == 421
    assert [parsed(e)["Message-ID"] for e in handler.envelopes] == [letter(2).message_id]


def test_the_sender_never_shows_its_password():
    sender = SmtpSender("smtp.example", 587, FROM, starttls=True, username="usine", password="s3cret")
    assert "s3cret" not in repr(sender)


# --------------------------------------------------------------------------- MIME


def test_message_ids_are_stable_and_bracketed():
    assert make_message_id(42, "usine.invalid") == "<usine.42@usine.invalid>"
    assert make_message_id(42, "usine.invalid") == make_message_id("42", "usine.invalid")
    message = build_mime(
        OutgoingEmail("a@example.fr", None, "Objet", "texte", "<p>html</p>", "usine.1@usine.invalid"), FROM)
    assert message["Message-ID"] == "<usine.1@usine.invalid>"


def test_extra_headers_cannot_override_the_ones_the_builder_owns():
    email = OutgoingEmail("a@example.fr", None, "Objet", "texte", "<p>html</p>", "<x@usine.invalid>",
                          headers={"Subject": "autre"})
    with pytest.raises(ValueError):
        build_mime(email, FROM)


# --------------------------------------------------------------------------- the fake


def test_the_in_memory_sender_records_what_it_sends():
    fake = InMemorySender()
    with fake.connect() as connection:
        connection.send(letter(1))
        connection.send(letter(2, to="autre@example.fr"))
    assert [e.to_address for e in fake.sent] == ["claire.dupont@example.fr", "autre@example.fr"]
    assert fake.messages[0]["Message-ID"] == letter(1).message_id
    assert fake.sent_to("autre@example.fr") == [letter(2, to="autre@example.fr")]


def test_the_in_memory_sender_fails_temporarily_after_k_messages():
    fake = InMemorySender(fail_after=2)
    fake.send(letter(1))
    fake.send(letter(2))
    with pytest.raises(DeliveryError) as caught:
        fake.send(letter(3))
    assert caught.value.permanent is False
    assert len(fake.sent) == 2
    assert fake.attempts == 3


def test_an_in_memory_sender_told_to_fail_after_zero_sends_nothing():
    fake = InMemorySender(fail_after=0)
    with pytest.raises(DeliveryError):
        fake.send(letter())
    assert fake.sent == []
