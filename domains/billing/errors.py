"""The billing domain's errors."""

from __future__ import annotations

from bus.errors import ConfigurationError, TransientError, Unauthorized


class ProviderUnavailable(TransientError):
    """The payment provider did not answer: the charge is tried again, with the same
    idempotency key, so it is made at most once."""


class InvalidSignature(Unauthorized):
    """A webhook whose `Stripe-Signature` does not prove it came from the provider (missing,
    malformed, wrong, or outside the tolerance window): HTTP 401, nothing recorded."""


class WebhookSecretMissing(ConfigurationError):
    """No provider endpoint secret to verify webhooks with (none set, or still the
    placeholder synth generated): the stage is not yet connected to its provider. A 500
    whose reason is logged, so the stage's 5xx alarm tells the operator; the provider
    retries every webhook refused meanwhile."""
