"""Webhooks from the payment provider: the `Stripe-Signature` check and the event shape.

The header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (several `v1` while a
secret rolls). A webhook is genuine when one `v1` matches under the endpoint's secret, in
constant time, and its timestamp is within the tolerance of now (a captured webhook cannot
be replayed later).

The endpoint's secret is the provider's, so no stage can generate it: billing declares the
secret `webhook` (`bus.secrets`), `tctf synth` creates it holding a generated placeholder,
and the operator puts the provider's value in it (docs/deploy.md, "Secrets"). Every
endpoint secret the provider issues starts `whsec_`; a value without that prefix is the
placeholder, and while it is there every webhook is refused (the provider retries for
days) rather than the domain kept from starting: subscriptions, invoices and charges do
not wait on webhooks. `BILLING_WEBHOOK_SECRET` gives the secret to a local run (`stripe
listen` prints one).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bus import secrets
from domains.billing.errors import InvalidSignature

#: The domain's secret holding the provider's endpoint secret (`Domain(secrets=[SECRET])`).
SECRET = "webhook"
#: Where a local run may give the endpoint secret instead.
LOCAL_SECRET_VARIABLE = "BILLING_WEBHOOK_SECRET"
#: How every endpoint secret the provider issues begins, and a generated placeholder never.
PROVIDER_SECRET_PREFIX = "whsec_"

#: Seconds a webhook's timestamp may lie from now: Stripe's libraries' default.
TOLERANCE_SECONDS = 300
#: The longest header worth parsing; a real one is well under 200 bytes.
_MAX_HEADER_LENGTH = 2048


class WebhookObject(BaseModel):
    """The object a webhook is about (`data.object`); billing reads only its id."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=100)


class WebhookData(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: WebhookObject


class WebhookEvent(BaseModel):
    """A provider event as Stripe shapes one: `evt_...` id, `type`, `created`, `data.object`."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=r"^evt_[A-Za-z0-9_]{1,100}$")
    type: str = Field(min_length=1, max_length=100)
    created: int
    data: WebhookData


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header the provider sends with `body` at `timestamp`."""
    return f"t={timestamp},v1={_sign(body, secret, timestamp)}"


def endpoint_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The provider's endpoint secrets webhooks are checked with, current first (the
    previous one still accepted until every container has read the current one): the
    versions of the domain's secret, else `BILLING_WEBHOOK_SECRET`. None while the secret
    still holds the placeholder synth generated."""
    env = os.environ if env is None else env
    versions = secrets.versions(SECRET, env)
    if versions is None:
        local = env.get(LOCAL_SECRET_VARIABLE)
        versions = [local] if local else []
    return [version for version in versions if version.startswith(PROVIDER_SECRET_PREFIX)]


def verify(header: str | None, body: bytes, endpoint: Sequence[str], now: float) -> None:
    """Raise `InvalidSignature` unless `header` signs `body` with one of the `endpoint`
    secrets within the tolerance of `now`."""
    if not header or len(header) > _MAX_HEADER_LENGTH:
        raise InvalidSignature("the Stripe-Signature header is missing")
    timestamp, signatures = _parse(header)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature(
            f"the webhook's timestamp is more than {TOLERANCE_SECONDS}s from now"
        )
    expected = [_sign(body, secret, timestamp) for secret in endpoint]
    if not any(hmac.compare_digest(one, given) for one in expected for given in signatures):
        raise InvalidSignature("no signature in Stripe-Signature matches the body")


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("the Stripe-Signature header needs t=<timestamp> and v1=<hmac>")
    return timestamp, signatures


def _sign(body: bytes, secret: str, timestamp: int) -> str:
    signed: Any = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
