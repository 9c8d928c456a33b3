"""billing's payment failures over HTTP: a declined card, dunning retries on the schedule,
the subscription canceled after the last one fails, recovery with a new card, and a
provider that does not answer."""

from __future__ import annotations

from tests.domains.billing import DAY, billing_platform

HOUR = 3600.0


async def test_a_declined_card_fails_the_payment_and_schedules_the_first_retry() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", "pm_card_chargeDeclined")
        answer = await b.subscribe(user_id, token)
        invoices = await b.call("GET", f"/billing/customers/{user_id}/invoices", token=token)
    assert answer.status == 201  # the subscription starts; collecting it is dunning's job
    [failed] = b.facts("PAYMENT_FAILED")
    assert failed["attempt"] == 1 and failed["decline_code"] == "card_declined"
    assert failed["next_attempt_at"] == "2026-01-02T00:00:00.000Z"
    assert b.facts("INVOICE_PAID") == []
    [invoice] = invoices.json()["items"]
    assert invoice["status"] == "open" and invoice["attempts"] == 1


async def test_dunning_retries_on_schedule_then_cancels_after_the_last_failure() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", "pm_card_chargeDeclined")
        await b.subscribe(user_id, token)
        await b.advance(DAY - HOUR)
        before_due = len(b.facts("PAYMENT_FAILED"))
        await b.advance(HOUR)  # day 1: attempt 2
        await b.advance(3 * DAY)  # day 4: attempt 3
        await b.advance(5 * DAY)  # day 9: attempt 4, the last
        await b.advance(30 * DAY)
        token = await b.token("ada@example.com")
        answer = await b.call("GET", f"/billing/customers/{user_id}", token=token)
        invoices = await b.call("GET", f"/billing/customers/{user_id}/invoices", token=token)
    assert before_due == 1
    failures = b.facts("PAYMENT_FAILED")
    assert [f["attempt"] for f in failures] == [1, 2, 3, 4]
    assert [f["next_attempt_at"] for f in failures] == [
        "2026-01-02T00:00:00.000Z",
        "2026-01-05T00:00:00.000Z",
        "2026-01-10T00:00:00.000Z",
        None,
    ]
    [canceled] = b.facts("SUBSCRIPTION_CANCELED")
    assert canceled["reason"] == "payment_failed"
    assert answer.json()["subscription"]["status"] == "canceled"
    assert [i["status"] for i in invoices.json()["items"]] == ["uncollectible"]
    assert len(b.facts("INVOICE_ISSUED")) == 1  # a canceled subscription is not renewed


async def test_a_new_card_saved_during_dunning_pays_at_the_next_retry() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", "pm_card_chargeDeclinedExpiredCard")
        await b.subscribe(user_id, token)
        await b.call(
            "PUT",
            f"/billing/customers/{user_id}/payment-method",
            {"payment_method": "pm_card_mastercard"},
            token=token,
        )
        await b.advance(DAY)
        await b.advance(10 * DAY)
    [failed] = b.facts("PAYMENT_FAILED")
    assert failed["decline_code"] == "expired_card"
    [paid] = b.facts("INVOICE_PAID")
    assert paid["paid_at"] == "2026-01-02T00:00:00.000Z"
    assert b.facts("SUBSCRIPTION_CANCELED") == []


async def test_an_unavailable_provider_is_retried_then_parked_with_its_reason() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", "pm_local_unavailable")
        await b.subscribe(user_id, token)
        parked = await b.h.dead_letters("billing", "tasks")
    [letter] = parked
    assert "COLLECT_PAYMENT" in letter.body.decode()
    assert letter.reason is not None and "payment provider is unavailable" in letter.reason
    assert b.facts("INVOICE_PAID") == [] and b.facts("PAYMENT_FAILED") == []
