"""The message handed to a sender, its MIME form, and what every sender promises.

An ``OutgoingEmail`` is built from an outbox row: the rendered subject and bodies plus a
``message_id`` derived from the row, so that a message re-sent after a crash carries the same
Message-ID and the recipient's mail system (and an auditor) can recognise the duplicate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy as _policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, ContextManager, Mapping, Protocol

if TYPE_CHECKING:
    from notifications.rendering import RenderedMessage

__all__ = [
    "OutgoingEmail",
    "DeliveryError",
    "Sender",
    "SenderConnection",
    "build_mime",
    "make_message_id",
    "envelope_address",
]

# Headers build_mime owns: letting a caller's extra headers set them would produce messages
# with two Subjects or a body that does not match its Content-Type.
_RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version",
        "Content-Type", "Content-Transfer-Encoding",
    )
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable ASCII but ':'


class DeliveryError(Exception):
    """Sending failed. ``permanent`` tells the outbox whether retrying can ever help.

    permanent=True: the server refused this message for good (5xx reply), e.g. an unknown
    mailbox; the outbox should stop retrying and flag it. permanent=False: connection
    trouble, a 4xx reply, a timeout, a misconfiguration: retry later.
    """

    def __init__(self, permanent: bool, detail: str, code: int | None = None) -> None:
        self.permanent = permanent
        self.detail = detail
        self.code = code
        kind = "permanent" if permanent else "temporary"
        super().__init__(f"{kind} delivery failure: {detail}")


@dataclass(frozen=True)
class OutgoingEmail:
    to_address: str
    to_name: str | None
    subject: str
    text: str
    html: str
    message_id: str
    # Extra headers (e.g. X-Usine-Template-Hash). Left out of hashing: a dict is unhashable.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    # The Date header: the service's clock at sending (a demo workspace lives in June 2022),
    # not the machine's; None for the machine's clock.
    date: datetime | None = field(default=None, compare=False)
    # Files sent with the letter: (file name, MIME type, bytes) — the letter's PDF, whose text
    # is this message's text body (services.letters).
    attachments: tuple[tuple[str, str, bytes], ...] = field(default=(), compare=False)

    @classmethod
    def from_rendered(
        cls,
        rendered: "RenderedMessage",
        *,
        to_address: str,
        to_name: str | None,
        message_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> "OutgoingEmail":
        """Wrap a rendered notification, tagging it with its kind and template hash."""
        extra = {
            "X-Usine-Notification-Kind": rendered.kind,
            "X-Usine-Template-Hash": rendered.template_hash,
        }
        extra.update(headers or {})
        return cls(to_address, to_name, rendered.subject, rendered.text, rendered.html, message_id, extra)


class SenderConnection(Protocol):
    def send(self, email: OutgoingEmail) -> None: ...


class Sender(Protocol):
    """Implemented by ``SmtpSender`` and ``InMemorySender``."""

    def send(self, email: OutgoingEmail) -> None: ...

    def connect(self) -> ContextManager[SenderConnection]: ...


def make_message_id(key: str | int, domain: str) -> str:
    """A stable Message-ID for one outbox row: ``<usine.{key}@{domain}>``.

    Same row, same id: a re-send after a crash is recognisable as the same message.
    """
    local = re.sub(r"[^A-Za-z0-9.\-_+]", "-", str(key))
    return f"<usine.{local}@{domain}>"


def _normalise_message_id(message_id: str) -> str:
    value = message_id.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    if "@" not in value or not value.endswith(">") or any(c.isspace() for c in value):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    return value


def envelope_address(address: str) -> str:
    """The bare address of ``"Usine <ne-pas-repondre@x>"`` (what SMTP MAIL FROM takes)."""
    _, addr = parseaddr(address)
    if not addr or "@" not in addr:
        raise ValueError(f"not an e-mail address: {address!r}")
    return addr


def build_mime(email: OutgoingEmail, from_address: str, *, date: datetime | None = None) -> EmailMessage:
    """multipart/alternative (text then HTML, as RFC 2046 wants the preferred part last), UTF-8;
    inside a multipart/mixed when the letter carries its PDF.

    Bodies are quoted-printable so the message is 7-bit clean for any relay, and accented
    headers are RFC 2047-encoded by the ``email.policy.SMTP`` policy (CRLF line ends).
    """
    message = EmailMessage(policy=email_policy())
    message["From"] = from_address
    message["To"] = Address(display_name=email.to_name or "", addr_spec=email.to_address)
    message["Subject"] = email.subject
    date = date or email.date
    message["Date"] = format_datetime((date or datetime.now(timezone.utc)).astimezone(timezone.utc))
    message["Message-ID"] = _normalise_message_id(email.message_id)
    # RFC 3834: tells auto-responders not to answer a machine-sent letter.
    if not any(name.lower() == "auto-submitted" for name in email.headers):
        message["Auto-Submitted"] = "auto-generated"
    for name, value in email.headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} may not be set through OutgoingEmail.headers")
        message[name] = value
    message.set_content(email.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # With attachments the message becomes multipart/mixed: the alternative bodies, then the files.
    for filename, content_type, content in email.attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def email_policy() -> _policy.EmailPolicy:
    # raise_on_defect: a header the policy cannot represent must fail here, not be mangled.
    return _policy.SMTP.clone(raise_on_defect=True)
