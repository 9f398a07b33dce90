"""Sending ``OutgoingEmail`` over SMTP (smtplib), one connection per batch.

    sender = SmtpSender("127.0.0.1", 8025, "Usine <ne-pas-repondre@usine.invalid>")
    with sender.connect() as conn:
        for email in batch:
            try:
                conn.send(email)
            except DeliveryError as exc:
                ...  # exc.permanent: stop retrying this one; otherwise retry later

Failures are classified for the outbox (``DeliveryError.permanent``):

* a 5xx reply to the recipient or to the message data -> permanent: this message will never
  be accepted (unknown mailbox, content refused);
* 4xx replies, refused or dropped connections, timeouts, TLS trouble -> temporary;
* failures that are about *our* configuration rather than the message (greeting refused,
  STARTTLS unsupported, authentication failed, our sender address refused) -> temporary too,
  even on a 5xx: marking every queued letter as undeliverable because of a wrong password
  would lose letters; they must wait in the outbox until the configuration is fixed.
"""
from __future__ import annotations

import smtplib
import ssl
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Iterator

from notifications.email import DeliveryError, OutgoingEmail, build_mime, envelope_address

__all__ = ["SmtpSender", "SmtpConnection", "DeliveryError"]


def _is_permanent(code: int | None) -> bool:
    return code is not None and 500 <= code <= 599


def _reply_text(code: int | None, message: bytes | str | None) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {message}".strip() if code is not None else str(message)


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        from_address: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.from_address = from_address
        self.envelope_from = envelope_address(from_address)  # fail at start-up, not per message
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname

    def __repr__(self) -> str:  # never show the password in logs
        return f"SmtpSender({self.host!r}, {self.port!r}, from={self.envelope_from!r}, starttls={self.starttls})"

    def _open(self) -> smtplib.SMTP:
        try:
            client = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
        except smtplib.SMTPConnectError as exc:
            raise DeliveryError(False, f"connection to {self.host}:{self.port} refused: "
                                       f"{_reply_text(exc.smtp_code, exc.smtp_error)}", exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(False, f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        try:
            client.ehlo_or_helo_if_needed()
            if self.starttls:
                client.starttls(context=self.ssl_context or ssl.create_default_context())
                client.ehlo()
            if self.username is not None:
                client.login(self.username, self.password or "")
        except smtplib.SMTPResponseException as exc:
            client.close()
            raise DeliveryError(False, f"SMTP session set-up failed: "
                                       f"{_reply_text(exc.smtp_code, exc.smtp_error)}", exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            client.close()
            raise DeliveryError(False, f"SMTP session set-up failed: {exc!r}") from exc
        return client

    @contextmanager
    def connect(self) -> Iterator["SmtpConnection"]:
        """One SMTP session for a batch of messages; closed (QUIT) on exit."""
        connection = SmtpConnection(self, self._open())
        try:
            yield connection
        finally:
            connection.close()

    def send(self, email: OutgoingEmail) -> None:
        """Send one message on its own connection."""
        with self.connect() as connection:
            connection.send(email)


class SmtpConnection:
    def __init__(self, sender: SmtpSender, client: smtplib.SMTP) -> None:
        self._sender = sender
        self._client: smtplib.SMTP | None = client

    def send(self, email: OutgoingEmail) -> None:
        # Built before touching the network: a malformed message is a bug, not a delivery
        # failure, and must not be retried forever (ValueError propagates).
        message = build_mime(email, self._sender.from_address)
        if self._client is None:
            # The server dropped the previous session (e.g. a per-connection message limit):
            # open a new one for the rest of the batch.
            self._client = self._sender._open()
        client = self._client
        try:
            self._deliver(client, message, email.to_address)
        finally:
            if client.sock is None:
                # smtplib closes the socket itself on a 421 or a lost link; forget the session
                # so the next message of the batch opens a fresh one instead of failing too.
                self._client = None

    def _deliver(self, client: smtplib.SMTP, message: EmailMessage, to_address: str) -> None:
        try:
            refused = client.send_message(message, from_addr=self._sender.envelope_from, to_addrs=[to_address])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(to_address, (None, b"recipient refused"))
            raise DeliveryError(_is_permanent(code), f"recipient {to_address} refused: "
                                                     f"{_reply_text(code, reply)}", code) from exc
        except smtplib.SMTPSenderRefused as exc:
            # Our own MAIL FROM refused: configuration, not this message (see module doc).
            raise DeliveryError(False, f"sender {exc.sender!r} refused: "
                                       f"{_reply_text(exc.smtp_code, exc.smtp_error)}", exc.smtp_code) from exc
        except smtplib.SMTPDataError as exc:
            raise DeliveryError(_is_permanent(exc.smtp_code), "message refused: "
                                f"{_reply_text(exc.smtp_code, exc.smtp_error)}", exc.smtp_code) from exc
        except smtplib.SMTPNotSupportedError as exc:
            # e.g. a non-ASCII address and a server without SMTPUTF8: retrying will not help.
            raise DeliveryError(True, f"server cannot carry this message: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(_is_permanent(exc.smtp_code),
                                _reply_text(exc.smtp_code, exc.smtp_error), exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # SMTPServerDisconnected, timeouts, resets: the session is unusable.
            client.close()
            raise DeliveryError(False, f"connection lost while sending to {to_address}: {exc!r}") from exc
        if refused:  # only possible with several recipients; kept for completeness
            code, reply = next(iter(refused.values()))
            raise DeliveryError(_is_permanent(code), f"recipient refused: {_reply_text(code, reply)}", code)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()  # the messages are already accepted; a failed QUIT changes nothing
