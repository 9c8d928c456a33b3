"""The messaging_consumers domain's errors."""

from __future__ import annotations

from bus.errors import Forbidden, NotFound, PermanentError, Rejected


class UndeliverableTask(PermanentError):
    """A SEND_EMAIL that cannot make a letter (a campaign without a subject, an unsubscribe
    link that is not HTTPS): parked with the reason."""


class MalformedNotification(Rejected):
    """A bounce or complaint notification that is not the SNS message SES publishes: HTTP
    422, nothing recorded."""


class MailboxNotLocal(Forbidden):
    """The mailbox route asked by a peer other than this machine (`tctf run --host 0.0.0.0`):
    HTTP 403, as the letters carry other people's one-time links."""


class NoLocalMailbox(NotFound):
    """The mailbox route asked of a runtime that sends through a real provider: HTTP 404,
    as there is no mailbox to read."""
