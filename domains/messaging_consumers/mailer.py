"""The `Mailer` port and its two mailers: Amazon SES (SESv2) and the local mailbox.

A mailer takes a finished `Letter` and answers the provider's message id once the provider
has accepted it, or raises `ProviderRefused` (try again later) or `ProviderRejected` (never).
Which one runs is configuration (`TCTF_MAILER`): `ses` in a Lambda function and under
`tctf run --aws`, `local` under `tctf run` and in tests. The SDK is imported on the first
send, so a cold start does not pay for it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bus import ConfigurationError
from bus.storage.table import Table
from domains.messaging_consumers.errors import ProviderRefused, ProviderRejected

#: Which mailer sends: `ses` or `local`.
MAILER_VARIABLE = "TCTF_MAILER"
#: The sender's address; SES must have it (or its domain) verified.
MAIL_FROM_VARIABLE = "TCTF_MAIL_FROM"
DEFAULT_MAIL_FROM = "no-reply@example.com"
#: The SDK's own setting of the SES endpoint (a local emulator's URL under `tctf run --aws`).
SES_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_SESV2"
#: The SES configuration set to send with (its event destinations publish bounces), if any.
CONFIGURATION_SET_VARIABLE = "TCTF_SES_CONFIGURATION_SET"

MailerKind = Literal["ses", "local"]

#: SES error codes that no retry changes (SESv2 SendEmail's documented errors).
_REJECTIONS = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "BadRequestException",
        "NotFoundException",
    }
)


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
        """The provider's message id once it accepted `letter`; `ProviderRefused` or
        `ProviderRejected` when it did not."""
        ...


class SesMailer:
    """Amazon SES through SESv2's SendEmail, raw content (so custom headers survive).

    botocore's client, made on the first send and each call run in a worker thread: what a
    function ships (decision 0008), and all one send at a time needs. Region, credentials
    and endpoint are the SDK's own configuration (`AWS_REGION`, `AWS_ENDPOINT_URL_SESV2`).
    """

    def __init__(self, configuration_set: str | None = None) -> None:
        self.configuration_set = configuration_set
        self._client: Any = None

    async def send(self, letter: Letter) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": letter.sender,
            "Destination": {"ToAddresses": [letter.to]},
            "Content": {"Raw": {"Data": letter.as_mime()}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = await asyncio.to_thread(self._send, request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            text = f"SES {code}: {error.response.get('Error', {}).get('Message', '')}"
            if code in _REJECTIONS:
                raise ProviderRejected(text) from error
            raise ProviderRefused(text) from error
        except BotoCoreError as error:
            raise ProviderRefused(f"SES unreachable: {type(error).__name__}") from error
        return str(answer["MessageId"])

    def _send(self, request: dict[str, Any]) -> Any:
        if self._client is None:
            import botocore.session

            self._client = botocore.session.get_session().create_client("sesv2")
        return self._client.send_email(**request)


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


def configured_kind() -> MailerKind:
    """`TCTF_MAILER`, or `ses` in a Lambda function and `local` elsewhere; the local mailbox
    is refused in Lambda, where its route would hand out other people's links."""
    in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    kind = os.environ.get(MAILER_VARIABLE) or ("ses" if in_lambda else "local")
    if kind not in ("ses", "local"):
        raise ConfigurationError(f"{MAILER_VARIABLE} is 'ses' or 'local', not {kind!r}")
    if kind == "local" and in_lambda:
        raise ConfigurationError(
            f"{MAILER_VARIABLE}=local keeps letters in the table: never in a deployed function"
        )
    return "ses" if kind == "ses" else "local"


def sender_address() -> str:
    return os.environ.get(MAIL_FROM_VARIABLE) or DEFAULT_MAIL_FROM
