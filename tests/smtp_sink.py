"""A real SMTP server for the tests (aiosmtpd on 127.0.0.1, a free port) that keeps what it
receives, and can be told to answer "451 try again later" after k messages."""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from notifications.smtp import SmtpSender

FROM = "Région Occitanie — Industrie du Futur <ne-pas-repondre@usine.invalid>"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    to: str
    kind: str
    subject: str
    message_id: str
    text: str
    html: str
    message: EmailMessage


class Sink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_after: int | None = None
        self.refuse: set[str] = set()   # recipients answered 550 (permanent)
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_after is not None and len(self.received) >= self.fail_after:
                return "451 4.3.0 Temporary local problem, try again later"
            msg = message_from_bytes(envelope.original_content or envelope.content, policy=email_policy.default)
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            self.received.append(Received(envelope.rcpt_tos[0], msg["X-Usine-Notification-Kind"], str(msg["Subject"]),
                                          msg["Message-ID"], text, html, msg))
        return "250 2.0.0 Message accepted"

    def take(self) -> list[Received]:
        """What arrived since the last call."""
        with self._lock:
            out = list(self.received[getattr(self, "_taken", 0):])
            self._taken = len(self.received)
        return out


class SmtpSink:
    def __init__(self, handler: Sink | None = None) -> None:
        self.handler = handler or Sink()
        for _ in range(5):
            controller = Controller(self.handler, hostname="127.0.0.1", port=free_port())
            try:
                controller.start()
            except Exception:  # noqa: BLE001 - port taken between probe and bind: retry
                continue
            self.controller = controller
            break
        else:
            raise RuntimeError("no SMTP server could start on 127.0.0.1")

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def sender(self) -> SmtpSender:
        return SmtpSender("127.0.0.1", self.port, FROM, timeout=10)

    def stop(self) -> None:
        self.controller.stop()
