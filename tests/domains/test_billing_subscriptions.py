"""billing over HTTP: a customer per user, subscribing, changing plan with proration,
canceling at period end, and the monthly invoice the renewal schedule issues."""

from __future__ import annotations

from tests.domains.billing import DAY, billing_platform


async def test_a_new_user_becomes_a_customer_without_a_payment_method() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", payment_method=None)
        answer = await b.call("GET", f"/billing/customers/{user_id}", token=token)
    assert answer.status == 200
    assert answer.json() == {
        "user_id": user_id,
        "currency": "EUR",
        "payment_method": None,
        "credit": 0,
        "subscription": None,
    }


async def test_subscribing_issues_the_first_invoice_and_collects_it() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        answer = await b.subscribe(user_id, token, "pro")
        invoices = await b.call("GET", f"/billing/customers/{user_id}/invoices", token=token)
    assert answer.status == 201
    assert answer.headers["location"] == f"/billing/customers/{user_id}"
    subscription = answer.json()
    assert subscription["current_period_start"] == "2026-01-01T00:00:00.000Z"
    assert subscription["current_period_end"] == "2026-02-01T00:00:00.000Z"
    [issued] = b.facts("INVOICE_ISSUED")
    assert issued["amount"] == 1500 and issued["currency"] == "EUR"
    assert issued["reason"] == "subscription_create"
    [paid] = b.facts("INVOICE_PAID")
    assert paid["invoice_id"] == issued["invoice_id"] and paid["amount"] == 1500
    [invoice] = invoices.json()["items"]
    assert invoice["status"] == "paid" and invoice["attempts"] == 1


async def test_a_user_sees_only_their_own_billing() -> None:
    async with billing_platform() as b:
        ada, ada_token = await b.customer("ada@example.com")
        bob, _ = await b.customer("bob@example.com")
        await b.subscribe(bob, (await b.sign_in("bob@example.com")).json()["access_token"])
        reads = [
            await b.call("GET", f"/billing/customers/{bob}", token=ada_token),
            await b.call("GET", f"/billing/customers/{bob}/invoices", token=ada_token),
            await b.call(
                "POST", f"/billing/customers/{bob}/subscription", {"plan": "pro"}, token=ada_token
            ),
            await b.call("DELETE", f"/billing/customers/{bob}/subscription", token=ada_token),
        ]
        anonymous = await b.call("GET", f"/billing/customers/{ada}")
    assert [r.status for r in reads] == [404, 404, 404, 404]
    assert all(r.headers["content-type"] == "application/problem+json" for r in reads)
    assert anonymous.status == 401


async def test_subscribing_needs_a_payment_method_and_happens_once() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com", payment_method=None)
        without = await b.subscribe(user_id, token)
        await b.call(
            "PUT",
            f"/billing/customers/{user_id}/payment-method",
            {"payment_method": "pm_card_visa"},
            token=token,
        )
        first = await b.subscribe(user_id, token)
        second = await b.subscribe(user_id, token, "business")
        unknown = await b.subscribe(user_id, token, "platinum")
    assert without.status == 422 and first.status == 201 and second.status == 409
    assert unknown.status == 422
    assert len(b.facts("INVOICE_ISSUED")) == 1


async def test_the_renewal_schedule_issues_one_invoice_a_month() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token)
        await b.advance(30 * DAY)
        before = len(b.facts("INVOICE_ISSUED"))
        await b.advance(1 * DAY)  # 2026-02-01: the period ends
        await b.advance(28 * DAY)  # 2026-03-01
        token = await b.token("ada@example.com")
        answer = await b.call("GET", f"/billing/customers/{user_id}", token=token)
    issued = b.facts("INVOICE_ISSUED")
    assert before == 1 and len(issued) == 3
    assert [i["reason"] for i in issued] == [
        "subscription_create",
        "subscription_cycle",
        "subscription_cycle",
    ]
    assert [i["period_start"] for i in issued[1:]] == [
        "2026-02-01T00:00:00.000Z",
        "2026-03-01T00:00:00.000Z",
    ]
    assert len(b.facts("INVOICE_PAID")) == 3
    assert answer.json()["subscription"]["current_period_end"] == "2026-04-01T00:00:00.000Z"


async def test_upgrading_mid_period_invoices_the_prorated_difference() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token, "pro")
        b.clock.advance(15.5 * DAY)  # half of January's 31 days remain
        token = await b.token("ada@example.com")
        changed = await b.call(
            "PATCH", f"/billing/customers/{user_id}/subscription", {"plan": "business"}, token=token
        )
        await b.h.settle()
    assert changed.status == 200 and changed.json()["plan"] == "business"
    first, proration = b.facts("INVOICE_ISSUED")
    assert proration["reason"] == "subscription_update"
    assert proration["amount"] == (4900 - 1500) // 2  # 1700 cents: half the difference
    assert proration["period_end"] == first["period_end"]


async def test_downgrading_credits_the_difference_against_the_next_invoice() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token, "business")
        b.clock.advance(15.5 * DAY)
        token = await b.token("ada@example.com")
        await b.call(
            "PATCH", f"/billing/customers/{user_id}/subscription", {"plan": "pro"}, token=token
        )
        credited = await b.call("GET", f"/billing/customers/{user_id}", token=token)
        await b.advance(15.5 * DAY)  # 2026-02-01
        token = await b.token("ada@example.com")
        after = await b.call("GET", f"/billing/customers/{user_id}", token=token)
    assert credited.json()["credit"] == 1700
    _, renewal = b.facts("INVOICE_ISSUED")
    assert renewal["amount"] == 0 and after.json()["credit"] == 200
    assert len(b.facts("INVOICE_PAID")) == 2


async def test_canceling_ends_the_subscription_at_the_period_end_without_a_new_invoice() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token)
        canceled = await b.call("DELETE", f"/billing/customers/{user_id}/subscription", token=token)
        await b.advance(30 * DAY)
        still = b.facts("SUBSCRIPTION_CANCELED")
        await b.advance(1 * DAY)
        token = await b.token("ada@example.com")
        answer = await b.call("GET", f"/billing/customers/{user_id}", token=token)
        again = await b.call("DELETE", f"/billing/customers/{user_id}/subscription", token=token)
    assert canceled.status == 200 and canceled.json()["cancel_at_period_end"] is True
    assert still == []
    [ended] = b.facts("SUBSCRIPTION_CANCELED")
    assert ended["reason"] == "requested" and ended["user_id"] == user_id
    assert answer.json()["subscription"]["status"] == "canceled"
    assert len(b.facts("INVOICE_ISSUED")) == 1 and again.status == 404


async def test_a_deleted_user_is_erased_keeping_only_their_invoices() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token)
        deleted = await b.call("DELETE", f"/users/{user_id}", token=token)
        await b.h.settle()
        item = await b.h.runtime.tables["billing"].get(
            {"PK": f"CUSTOMER#{user_id}", "SK": "PROFILE"}
        )
        await b.advance(31 * DAY)
    assert deleted.status == 204
    assert item is not None and set(item) == {"PK", "SK", "user_id", "erased_at"}
    [ended] = b.facts("SUBSCRIPTION_CANCELED")
    assert ended["reason"] == "account_deleted"
    assert len(b.facts("INVOICE_ISSUED")) == 1  # no renewal after erasure


async def test_invoices_come_in_pages_and_a_bad_limit_or_cursor_is_422() -> None:
    async with billing_platform() as b:
        user_id, token = await b.customer("ada@example.com")
        await b.subscribe(user_id, token)
        await b.advance(31 * DAY)
        token = await b.token("ada@example.com")
        path = f"/billing/customers/{user_id}/invoices"
        first = await b.client.get(path, "limit=1", token)
        rest = await b.client.get(path, f"limit=1&cursor={first.json()['cursor']}", token)
        bad = [
            await b.client.get(path, "limit=0", token),
            await b.client.get(path, "limit=101", token),
            await b.client.get(path, "limit=ten", token),
            await b.client.get(path, "cursor=not-a-cursor", token),
        ]
    assert first.status == 200 and len(first.json()["items"]) == 1
    assert first.json()["cursor"] is not None
    assert [i["reason"] for i in first.json()["items"] + rest.json()["items"]] == [
        "subscription_create",
        "subscription_cycle",
    ]
    assert [r.status for r in bad] == [422, 422, 422, 422]
