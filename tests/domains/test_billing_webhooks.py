"""The provider's webhooks over HTTP: Stripe's signature checked (a bad one, a stale one,
none at all refused with nothing recorded), and each provider event id taking effect once."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from bus.secrets import variable
from domains.billing.webhooks import SECRET, TOLERANCE_SECONDS, endpoint_secrets, signature_header
from tests.domains.billing import WEBHOOK_SECRET, Billing, billing_platform

#: What `tctf synth` generates before the operator puts the provider's value: 64 letters
#: and digits.
PLACEHOLDER = "Gq7" * 21 + "x"


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_WEBHOOK_SECRET", WEBHOOK_SECRET)


def invoice_paid(invoice_id: str, event_id: str = "evt_1PaidOutOfBand") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "created": 1_767_225_600,
        "data": {"object": {"id": invoice_id, "object": "invoice", "status": "paid"}},
    }


async def open_invoice(b: Billing) -> tuple[str, str]:
    """A customer whose first invoice stays open (the card was declined): id and invoice."""
    user_id, token = await b.customer("ada@example.com", "pm_card_chargeDeclined")
    await b.subscribe(user_id, token)
    [issued] = b.facts("INVOICE_ISSUED")
    return user_id, issued["invoice_id"]


async def test_a_signed_invoice_paid_webhook_settles_the_open_invoice() -> None:
    async with billing_platform() as b:
        user_id, invoice_id = await open_invoice(b)
        answer = await b.send_webhook(invoice_paid(invoice_id))
        token = await b.token("ada@example.com")
        invoices = await b.call("GET", f"/billing/customers/{user_id}/invoices", token=token)
    assert answer.status == 200 and answer.json() == {"received": True, "duplicate": False}
    [paid] = b.facts("INVOICE_PAID")
    assert paid["invoice_id"] == invoice_id and paid["user_id"] == user_id
    assert [i["status"] for i in invoices.json()["items"]] == ["paid"]


async def test_a_replayed_webhook_takes_effect_once() -> None:
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        first = await b.send_webhook(invoice_paid(invoice_id))
        replays = [await b.send_webhook(invoice_paid(invoice_id)) for _ in range(2)]
    assert first.json()["duplicate"] is False
    assert [r.status for r in replays] == [200, 200]
    assert [r.json()["duplicate"] for r in replays] == [True, True]
    assert len(b.facts("INVOICE_PAID")) == 1


@pytest.mark.parametrize(
    ("secret", "age"),
    [
        ("whsec_someone_else", 0.0),  # signed with another secret
        (WEBHOOK_SECRET, TOLERANCE_SECONDS + 1.0),  # captured and sent again too late
        (WEBHOOK_SECRET, -(TOLERANCE_SECONDS + 1.0)),  # dated in the future
    ],
    ids=["bad-signature", "old-timestamp", "future-timestamp"],
)
async def test_a_webhook_not_signed_now_with_the_secret_is_refused(secret: str, age: float) -> None:
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        answer = await b.send_webhook(invoice_paid(invoice_id), secret=secret, age=age)
        then = await b.send_webhook(invoice_paid(invoice_id))
    assert answer.status == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert then.json()["duplicate"] is False  # the refused one recorded nothing
    assert len(b.facts("INVOICE_PAID")) == 1


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "t=abc,v1=00",
        "v1=00",
        "t=1767225600",
        "t=1767225600,v1=" + "0" * 64,
        "t=1767225600,v0=whatever",
    ],
)
async def test_a_missing_or_malformed_signature_header_is_401(signature: str | None) -> None:
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        answer = await b.client.webhook(orjson.dumps(invoice_paid(invoice_id)), signature)
    assert answer.status == 401 and answer.json()["type"] == "urn:tctf:problem:unauthorized"


async def test_a_body_changed_after_signing_is_refused() -> None:
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        body = orjson.dumps(invoice_paid(invoice_id))
        signature = signature_header(body, WEBHOOK_SECRET, int(b.clock.now()))
        answer = await b.client.webhook(body.replace(b"invoice.paid", b"invoice.pa1d"), signature)
    assert answer.status == 401


async def test_a_signed_body_that_is_no_provider_event_is_422() -> None:
    async with billing_platform() as b:
        answer = await b.send_webhook({"id": "not-an-event"})
    assert answer.status == 422 and answer.headers["content-type"] == "application/problem+json"


async def test_an_event_of_another_type_is_acknowledged_and_changes_nothing() -> None:
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        event = {**invoice_paid(invoice_id), "type": "customer.updated"}
        answer = await b.send_webhook(event)
    assert answer.status == 200 and b.facts("INVOICE_PAID") == []


async def test_without_a_signing_secret_every_webhook_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BILLING_WEBHOOK_SECRET")
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        answer = await b.send_webhook(invoice_paid(invoice_id))
    assert answer.status == 500 and b.facts("INVOICE_PAID") == []


async def test_while_the_deployed_secret_is_synth_s_placeholder_every_webhook_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed with the placeholder or not: until the operator puts the provider's value,
    no webhook is taken, and the log says what to do."""
    monkeypatch.setenv(variable(SECRET), json.dumps([PLACEHOLDER]))
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        forged = await b.send_webhook(invoice_paid(invoice_id), secret=PLACEHOLDER)
        genuine = await b.send_webhook(invoice_paid(invoice_id))
    # A 500, not a 401: the stage is miswired, not the caller, and its 5xx alarm says so.
    assert forged.status == 500 and genuine.status == 500
    assert b.facts("INVOICE_PAID") == []
    assert "put it in the stage's billing webhook secret" in caplog.text


async def test_the_provider_s_value_put_in_the_secret_verifies_webhooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BILLING_WEBHOOK_SECRET")
    monkeypatch.setenv(variable(SECRET), json.dumps([WEBHOOK_SECRET, PLACEHOLDER]))
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        answer = await b.send_webhook(invoice_paid(invoice_id))
    assert answer.status == 200 and len(b.facts("INVOICE_PAID")) == 1


async def test_after_the_provider_s_secret_rolls_the_previous_one_still_verifies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable(SECRET), json.dumps(["whsec_rolled_0123456789", WEBHOOK_SECRET]))
    async with billing_platform() as b:
        _, invoice_id = await open_invoice(b)
        answer = await b.send_webhook(invoice_paid(invoice_id))
    assert answer.status == 200 and len(b.facts("INVOICE_PAID")) == 1


def test_a_deployed_billing_boots_without_the_provider_s_secret() -> None:
    """Subscriptions and charges do not wait on webhooks: only webhooks are refused."""
    deployed = {"AWS_LAMBDA_FUNCTION_NAME": "tctf-prod-billing"}
    assert endpoint_secrets({**deployed, variable(SECRET): json.dumps([PLACEHOLDER])}) == []
    assert endpoint_secrets(deployed) == []
