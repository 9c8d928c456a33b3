"""The mail provider port: what hands a finished e-mail to the platform's provider for a
domain declaring `Mail` — Amazon SES on AWS (`adapters/aws/ses.py`), none in process.

The runtime provides it (`Runtime(mail_provider=...)`, a Lambda's boot) and a handler reads
it as `ctx.mail_provider`; None means the runtime sends no mail anywhere, and a domain
keeps its letters itself (messaging_consumers' local mailbox).
"""

from __future__ import annotations

import contextvars
from typing import Protocol


class MailProvider(Protocol):
    """Hands an RFC 5322 message to a mail provider."""

    async def send(self, *, sender: str, to: str, message: bytes) -> str:
        """The provider's message id once it accepted `message`; `MailRefused` (try again
        later) or `MailRejected` (never) when it did not."""
        ...


#: The mail provider of the process running the handlers: set by the runtime or the
#: Lambda's boot, read by `Context.mail_provider`.
current_mail_provider: contextvars.ContextVar[MailProvider | None] = contextvars.ContextVar(
    "current_mail_provider", default=None
)
