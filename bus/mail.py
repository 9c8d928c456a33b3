"""The mail provider port: what hands a finished e-mail to the platform's provider for a
domain declaring `Mail` — Amazon SES on AWS (`adapters/aws/ses.py`), none in process.

The runtime provides it (`Runtime(mail_provider=...)`, a Lambda's boot) and a handler reads
it as `ctx.mail_provider`; None means the runtime sends no mail anywhere, and a domain
keeps its letters itself (messaging_consumers' local mailbox). The address mail is sent
from is the platform's too: the stage's verified identity, which `tctf synth` gives a
function as `TCTF_MAIL_FROM` and `tctf run --aws` verifies on its SES.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Protocol

#: The variable naming the sender's address; SES must have it (or its domain) verified.
MAIL_FROM_VARIABLE = "TCTF_MAIL_FROM"
#: The sender where none is named: a run on this machine, or an emulator's SES.
DEFAULT_MAIL_FROM = "no-reply@example.com"


def sender_address(env: Mapping[str, str] = os.environ) -> str:
    """The address the platform sends mail from (`TCTF_MAIL_FROM`)."""
    return env.get(MAIL_FROM_VARIABLE) or DEFAULT_MAIL_FROM


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
