"""The `Mailer` port and its two mailers: the platform's mail provider, and the local mailbox.

A mailer takes a finished `Letter` and answers the provider's message id once the provider
has accepted it, or raises `MailRefused` (try again later) or `MailRejected` (never). Which
one runs is the runtime's choice: where it provides a mail provider (`ctx.mail_provider`,
Amazon SES in a Lambda function and under `tctf run --aws`, made in `adapters/aws/ses.py`)
letters go through it; where it provides none (`tctf run`, tests) the local mailbox keeps
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bus.mail import MailProvider
from bus.storage.table import Table


@dataclass(frozen=True, slots=True)
class Letter:
    """One e-mail, written: plain text, with any extra headers (`List-Unsubscribe`, ...)."""

    to: str
    sender: str
    subject: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def as_mime(self) -> bytes:
        """The RFC 5322 message SES's raw content carries."""
        from email.message import EmailMessage  # on sending, not at the function's init
        from email.utils import make_msgid

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        for name, value in self.headers.items():
            message[name] = value
        message.set_content(self.text)
        return message.as_bytes()


class Mailer(Protocol):
    """Hands a letter to a mail provider."""

    async def send(self, letter: Letter) -> str:
        """The provider's message id once it accepted `letter`; `MailRefused` or
        `MailRejected` when it did not."""
        ...


class ProviderMailer:
    """Sends through the platform's mail provider (`ctx.mail_provider`: SES on AWS)."""

    def __init__(self, provider: MailProvider) -> None:
        self.provider = provider

    async def send(self, letter: Letter) -> str:
        return await self.provider.send(
            sender=letter.sender, to=letter.to, message=letter.as_mime()
        )


class LocalMailbox:
    """Keeps every letter whole in the domain's table, for a developer to read (`GET /mail`,
    `tctf mail`), as a local mail catcher does; sends nothing anywhere."""

    def __init__(self, table: Table, message_id: str, sent_at: str) -> None:
        self.table = table
        self.message_id = message_id
        self.sent_at = sent_at

    async def send(self, letter: Letter) -> str:
        await self.table.put(
            {
                **mailbox_key(letter.to, f"{self.sent_at}#{self.message_id}"),
                "message_id": self.message_id,
                "to": letter.to,
                "from": letter.sender,
                "subject": letter.subject,
                "text": letter.text,
                "headers": dict(letter.headers),
                "sent_at": self.sent_at,
            }
        )
        return self.message_id


def mailbox_key(to: str, sort: str) -> dict[str, str]:
    return {"PK": f"MAILBOX#{to}", "SK": sort}
