"""What messaging_consumers publishes and the task it accepts: the only module other domains
may import.

`SEND_EMAIL` is the one way another domain has an e-mail sent. The facts tell what became of
it: `EMAIL_SENT` once the provider accepted the message, `EMAIL_FAILED` when it never will be
(the task then sits in messaging_consumers' task DLQ with the reason), `EMAIL_BOUNCED` when
the provider reported a bounce or complaint and the address was suppressed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bus.messages import Event, Task

#: The e-mails messaging_consumers knows how to write; `campaign` carries its own subject and
#: body, written by an admin in communication.
Template = Literal[
    "welcome",
    "set-password",
    "reset-password",
    "account-locked",
    "receipt",
    "payment-failed",
    "achievement",
    "campaign",
]


class SendEmail(Task):
    """Send one e-mail; consumed from messaging_consumers' task queue.

    `link` is a one-time link (set or reset a password) and `unsubscribe_url` carries a
    token: secrets that travel only here, never in an event, a table or a log line.
    `values` fill the template (an invoice's amount, an achievement's name, ...).
    """

    type = "SEND_EMAIL"
    domain = "messaging_consumers"

    to: str
    template: Template
    name: str
    user_id: str | None = None
    locale: str = "en"
    link: str | None = Field(default=None, repr=False)
    values: dict[str, str] = Field(default_factory=dict)
    campaign_id: str | None = None
    subject: str | None = None
    body: str | None = None
    unsubscribe_url: str | None = Field(default=None, repr=False)


class EmailSent(Event):
    """The mail provider accepted an e-mail (`message_id` is the provider's)."""

    type = "EMAIL_SENT"

    to: str
    template: Template
    message_id: str
    user_id: str | None = None
    campaign_id: str | None = None


class EmailFailed(Event):
    """An e-mail will never be sent: the address is suppressed, or the provider refused it
    on the task's last receive. The task is in messaging_consumers' task DLQ with `reason`."""

    type = "EMAIL_FAILED"

    to: str
    template: Template
    reason: str
    user_id: str | None = None
    campaign_id: str | None = None


class EmailBounced(Event):
    """The provider reported a bounce or complaint for an address; no more mail goes to it."""

    type = "EMAIL_BOUNCED"

    email: str
    kind: Literal["bounce", "complaint"]
