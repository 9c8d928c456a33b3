"""The `PaymentProvider` port and the local provider that stands in for a real one.

The local provider answers as Stripe's test mode does for its test payment methods, so a
developer or a test tells it to decline or fail by the payment method a customer saves:

| payment method | answer |
|---|---|
| `pm_card_visa`, `pm_card_mastercard` | succeeded |
| `pm_card_chargeDeclined` | declined, `card_declined` |
| `pm_card_chargeDeclinedInsufficientFunds` | declined, `insufficient_funds` |
| `pm_card_chargeDeclinedExpiredCard` | declined, `expired_card` |
| `pm_local_unavailable` | `ProviderUnavailable` (the provider did not answer) |

A charge is identified by its idempotency key, so the same key charges once, whatever the
number of calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bus.ids import derived_id
from domains.billing.errors import ProviderUnavailable

_DECLINES = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}
_SUCCEEDS = frozenset({"pm_card_visa", "pm_card_mastercard"})
#: The payment method that makes the local provider unreachable.
UNAVAILABLE = "pm_local_unavailable"


@dataclass(frozen=True, slots=True)
class Charge:
    """The provider's answer to one charge."""

    charge_id: str
    status: Literal["succeeded", "declined"]
    #: Why it was declined, in the provider's words (Stripe's `decline_code`).
    decline_code: str | None = None


class PaymentProvider(Protocol):
    """Charges a customer's saved payment method."""

    async def charge(
        self,
        *,
        customer: str,
        payment_method: str,
        amount: int,
        currency: str,
        idempotency_key: str,
    ) -> Charge:
        """Charge `amount` minor units; the same `idempotency_key` answers the same charge.
        Raises `ProviderUnavailable` when the provider cannot be reached."""
        ...


class LocalPaymentProvider:
    """A provider without a network: its answer follows the payment method (see above)."""

    async def charge(
        self,
        *,
        customer: str,
        payment_method: str,
        amount: int,
        currency: str,
        idempotency_key: str,
    ) -> Charge:
        if payment_method == UNAVAILABLE:
            raise ProviderUnavailable("the payment provider is unavailable; try again later")
        charge_id = "ch_" + derived_id(f"{customer}/{idempotency_key}").replace("-", "")
        if payment_method in _SUCCEEDS:
            return Charge(charge_id, "succeeded")
        return Charge(charge_id, "declined", _DECLINES.get(payment_method, "card_declined"))
