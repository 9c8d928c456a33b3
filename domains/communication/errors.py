"""The communication domain's errors."""

from __future__ import annotations

from bus.errors import ConfigurationError, Rejected


class InvalidUnsubscribeLink(Rejected):
    """An unsubscribe token that is malformed, not signed by this domain, or expired: HTTP
    422, nothing changed."""


class UnsubscribeLinksMisconfigured(ConfigurationError):
    """A deployed function without the secret its unsubscribe links are signed with, or the
    app URL they lead to: it fails its init, as a campaign's e-mails cannot honour the law
    on unsubscribing without working links."""
