"""The communication domain's errors."""

from __future__ import annotations

from bus.errors import PermanentError, Rejected


class InvalidUnsubscribeLink(Rejected):
    """An unsubscribe token that is malformed, not signed by this domain, or expired: HTTP
    422, nothing changed."""


class UnsubscribeSecretMissing(PermanentError):
    """No secret to sign unsubscribe links with: a campaign's e-mails cannot honour the law
    on unsubscribing without one, so the batch is parked (redrive it once it is set)."""
