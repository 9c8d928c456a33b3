"""What the messaging domain publishes and the tasks it accepts."""

from __future__ import annotations

from bus.messages import Event, Task


class SendEmail(Task):
    """Send one templated e-mail; consumed from messaging's task queue."""

    type = "SEND_EMAIL"
    domain = "messaging"

    to: str
    template: str
    name: str


class WelcomeEmailSent(Event):
    """A welcome e-mail left for a new user."""

    type = "WELCOME_EMAIL_SENT"

    user_id: str
    email: str
