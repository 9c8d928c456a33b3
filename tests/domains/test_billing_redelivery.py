"""Every billing handler re-delivered twice has one effect: the same facts, the same items,
whether the duplicate is caught by its idempotency record or, that record expired, by the
handler's own conditions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bus.storage.memory import InMemoryTable
from domains.billing.contracts import CollectPayment
from tests.domains.billing import DAY, Billing, billing_platform

FACTS = ("INVOICE_ISSUED", "INVOICE_PAID", "PAYMENT_FAILED", "SUBSCRIPTION_CANCELED")


def fact_counts(b: Billing) -> Counter[str]:
    return Counter(e.type for e in b.h.published if e.type in FACTS)


def business_items(b: Billing) -> list[dict[str, Any]]:
    """billing's own items: not its idempotency records or outbox, which a duplicate may
    touch without being an effect."""
    table = b.h.runtime.tables["billing"]
    assert isinstance(table, InMemoryTable)
    return sorted(
        (i for i in table.scan() if not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))),
        key=lambda i: (i["PK"], i["SK"]),
    )


@pytest.mark.parametrize(
    ("message_type", "handler"),
    [
        ("USER_CREATED", "billing.open_customer"),
        ("COLLECT_PAYMENT", "billing.collect_payment"),
        ("RENEW_SUBSCRIPTIONS", "billing.find_renewals"),
        ("RENEW_SUBSCRIPTION", "billing.renew_subscription"),
        ("RETRY_PAYMENTS", "billing.find_dunning_retries"),
        ("USER_DELETED", "billing.erase_customer"),
    ],
)
async def test_each_handler_redelivered_twice_has_one_effect(
    message_type: str, handler: str
) -> None:
    async with billing_platform() as b:
        ada, ada_token = await b.customer("ada@example.com")
        bob, bob_token = await b.customer("bob@example.com", "pm_card_chargeDeclined")
        await b.subscribe(ada, ada_token)
        await b.subscribe(bob, bob_token)
        await b.advance(31 * DAY)  # renewals, dunning retries
        await b.call("DELETE", f"/users/{ada}", token=await b.token("ada@example.com"))
        await b.h.settle()
        handled = len(b.h.handled(handler))
        facts = fact_counts(b)
        state = business_items(b)
        delivered = [e for e in b.h.published if e.type == message_type]
        await b.h.redeliver(delivered)
        state_after = business_items(b)
    # Re-delivered after the idempotency records expired (31 days > 15), the handlers run
    # again: what keeps the effect single is the business's own guards.
    assert handled >= 1 and delivered
    assert fact_counts(b) == facts
    assert state_after == state


async def test_a_prompt_duplicate_is_skipped_by_its_idempotency_record() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token)
        delivered = [e for e in b.h.published if e.type in ("USER_CREATED", "COLLECT_PAYMENT")]
        await b.h.redeliver(delivered)
    assert len(b.h.handled("billing.open_customer")) == 1
    assert len(b.h.handled("billing.collect_payment")) == 1
    assert len(b.facts("INVOICE_PAID")) == 1


async def test_a_collection_sent_again_under_a_new_id_charges_and_records_once() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", "pm_card_chargeDeclined")
        await b.subscribe(user_id, token)
        [issued] = b.facts("INVOICE_ISSUED")
        again = CollectPayment(user_id=user_id, invoice_id=issued["invoice_id"], attempt=1)
        await b.h.send(again, source="billing")
        await b.h.send(again, source="billing")
        await b.h.settle()
    assert len(b.facts("PAYMENT_FAILED")) == 1
