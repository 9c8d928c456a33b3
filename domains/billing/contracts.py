"""What billing publishes and the tasks it sends itself: the only module other domains may
import. Money is an integer amount in the currency's minor unit with its ISO 4217 code."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from bus.messages import Event, Task

#: An ISO 4217 currency code (`EUR`).
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
#: An amount in the currency's minor unit (cents for EUR): never a float.
MinorUnits = Annotated[int, Field(ge=0)]
#: Why an invoice was issued, in Stripe's `billing_reason` words.
InvoiceReason = Literal["subscription_create", "subscription_cycle", "subscription_update"]


class InvoiceIssued(Event):
    """An invoice was issued to a customer and its payment is being collected."""

    type = "INVOICE_ISSUED"

    user_id: str
    invoice_id: str
    subscription_id: str
    plan: str
    amount: MinorUnits
    currency: Currency
    reason: InvoiceReason
    period_start: str
    period_end: str


class InvoicePaid(Event):
    """An invoice was paid in full (receipts, achievements)."""

    type = "INVOICE_PAID"

    user_id: str
    invoice_id: str
    amount: MinorUnits
    currency: Currency
    paid_at: str


class PaymentFailed(Event):
    """Collecting an invoice failed; `next_attempt_at` is when dunning tries again, None
    after the last attempt (the subscription is then canceled)."""

    type = "PAYMENT_FAILED"

    user_id: str
    invoice_id: str
    amount: MinorUnits
    currency: Currency
    attempt: int
    decline_code: str
    next_attempt_at: str | None


class SubscriptionCanceled(Event):
    """A subscription ended: at the period end as asked, after the last failed payment, or
    because the account was deleted."""

    type = "SUBSCRIPTION_CANCELED"

    user_id: str
    subscription_id: str
    plan: str
    reason: Literal["requested", "payment_failed", "account_deleted"]


class CollectPayment(Task):
    """Charge an open invoice: attempt 1 when issued, then one per dunning retry."""

    type = "COLLECT_PAYMENT"
    domain = "billing"

    user_id: str
    invoice_id: str
    attempt: int = Field(ge=1)


class RenewSubscription(Task):
    """Renew one subscription whose period ended at `period_end`, or end it if canceled."""

    type = "RENEW_SUBSCRIPTION"
    domain = "billing"

    user_id: str
    period_end: str


class RenewSubscriptions(Task):
    """Find every subscription whose period has ended and renew each (scheduled)."""

    type = "RENEW_SUBSCRIPTIONS"
    domain = "billing"


class RetryPayments(Task):
    """Find every failed invoice whose dunning retry is due and collect it again (scheduled)."""

    type = "RETRY_PAYMENTS"
    domain = "billing"
