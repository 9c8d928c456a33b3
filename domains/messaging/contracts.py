"""What the messaging domain publishes and the tasks it accepts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bus.messages import Event, Task

#: The e-mails messaging knows how to write.
Template = Literal["welcome", "set-password", "reset-password"]


class SendEmail(Task):
    """Send one templated e-mail; consumed from messaging's task queue.

    `link` is a one-time link (set or reset a password): a secret that travels only here,
    never in an event, a table or a log line.
    """

    type = "SEND_EMAIL"
    domain = "messaging"

    to: str
    template: Template
    name: str
    link: str | None = Field(default=None, repr=False)


class WelcomeEmailSent(Event):
    """A welcome e-mail left for a new user."""

    type = "WELCOME_EMAIL_SENT"

    user_id: str
    email: str
