"""An in-memory sender for tests and for running scenarios without a mail server.

It has the interface of ``SmtpSender`` (``send`` and ``connect()``), builds the MIME message
like the real sender does (so a header the real one would refuse fails here too), and can be
told to fail after k messages to test what the outbox does when delivery stops mid-batch.
"""
from __future__ import annotations

from contextlib import contextmanager
from email.message import EmailMessage
from typing import Iterator

from notifications.email import DeliveryError, OutgoingEmail, build_mime

__all__ = ["InMemorySender", "DeliveryError"]


class InMemorySender:
    def __init__(
        self,
        from_address: str = "Usine <ne-pas-repondre@usine.invalid>",
        *,
        fail_after: int | None = None,
    ) -> None:
        self.from_address = from_address
        self.fail_after = fail_after
        self.sent: list[OutgoingEmail] = []
        self.messages: list[EmailMessage] = []  # the MIME form of each sent email, same order
        self.attempts = 0  # every call to send, successful or not
        self.connections = 0

    def send(self, email: OutgoingEmail) -> None:
        self.attempts += 1
        message = build_mime(email, self.from_address)
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            # Like a server going away: temporary, nothing recorded.
            raise DeliveryError(False, f"in-memory sender told to fail after {self.fail_after} message(s)")
        self.sent.append(email)
        self.messages.append(message)

    @contextmanager
    def connect(self) -> Iterator["InMemorySender"]:
        self.connections += 1
        yield self

    def sent_to(self, address: str) -> list[OutgoingEmail]:
        return [email for email in self.sent if email.to_address == address]

    def clear(self) -> None:
        self.sent.clear()
        self.messages.clear()
        self.attempts = 0
        self.connections = 0
