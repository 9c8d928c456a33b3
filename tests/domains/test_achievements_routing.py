"""`big_spender`'s `where=` becomes the SNS filter policy and the EventBridge rule pattern of
achievements' queue, so AWS drops small invoices before they reach it — unless another rule
needs every paid invoice, as `first_invoice_paid` does, and the queue takes them all."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest

from adapters.aws.local import teach_moto_or_in_message_body
from adapters.aws.poller import HandlerFactory, LambdaHandler
from adapters.aws.session import AwsSettings
from adapters.lambda_.sqs import sqs_batch_handler
from bus.clock import SystemClock
from bus.dispatch import Dispatcher
from bus.envelope import Envelope
from bus.routing import compile_event_pattern, compile_filter_policy
from bus.testing import Harness
from bus.topology import Topology
from domains.achievements.app import domain as achievements
from domains.achievements.declarations import BIG_INVOICE, RULES
from domains.achievements.engine import achievements_domain
from domains.achievements.rules import load_rules
from domains.billing.contracts import InvoicePaid

QUEUE = "tctf-achievements-events"
BIG_ONLY = achievements_domain(load_rules([r for r in RULES if r["id"] == "big_spender"]))


def paid(invoice_id: str, amount: int, currency: str = "EUR") -> InvoicePaid:
    return InvoicePaid(
        user_id="u1",
        invoice_id=invoice_id,
        amount=amount,
        currency=currency,
        paid_at="2026-01-01T00:00:00.000Z",
    )


def wire(envelope: Envelope) -> dict[str, Any]:
    return dict(orjson.loads(envelope.encode()))


def sns_delivers(topology: Topology, envelope: Envelope) -> bool:
    policy, scope = topology.filter_policy(QUEUE)
    attributes = {"type": {"Type": "String", "Value": envelope.type}}
    return compile_filter_policy(policy, scope).match(
        message_attributes=attributes, body=wire(envelope)
    )


def eventbridge_delivers(topology: Topology, envelope: Envelope) -> bool:
    event = {"source": envelope.source, "detail-type": envelope.type, "detail": wire(envelope)}
    return compile_event_pattern(topology.event_pattern(QUEUE)).match(event)


async def envelopes(*events: InvoicePaid) -> list[Envelope]:
    async with Harness() as h:
        return [h.runtime.context("billing").publish(e) for e in events]


def test_the_where_of_big_spender_is_its_subscription_filter() -> None:
    [subscription] = [
        s
        for s in Topology.from_domains([achievements]).subscriptions
        if s.handler == "achievements.big_spender_on_invoice_paid"
    ]
    assert subscription.where == {
        "currency": ["EUR"],
        "amount": [{"numeric": [">", BIG_INVOICE]}],
    }


@pytest.mark.parametrize("delivers", [sns_delivers, eventbridge_delivers])
async def test_the_synthesized_filter_lets_big_invoices_through_and_drops_the_rest(
    delivers: Callable[[Topology, Envelope], bool],
) -> None:
    topology = Topology.from_domains([BIG_ONLY])
    big, at_threshold, small, dollars = await envelopes(
        paid("i1", BIG_INVOICE + 1),
        paid("i2", BIG_INVOICE),
        paid("i3", 1500),
        paid("i4", 9900, "USD"),
    )
    assert delivers(topology, big)
    assert not delivers(topology, at_threshold)
    assert not delivers(topology, small)
    assert not delivers(topology, dollars)


@pytest.mark.parametrize("delivers", [sns_delivers, eventbridge_delivers])
async def test_with_first_invoice_paid_beside_it_every_paid_invoice_reaches_the_queue(
    delivers: Callable[[Topology, Envelope], bool],
) -> None:
    topology = Topology.from_domains([achievements])
    [small] = await envelopes(paid("i3", 1500))
    assert delivers(topology, small)


def recording(bodies: list[str]) -> HandlerFactory:
    """The platform's SQS batch handler, noting every record body that reached a queue."""

    def handler_for(dispatcher: Dispatcher, sqs: Any) -> LambdaHandler:
        inner = sqs_batch_handler(dispatcher, sqs)

        async def handle(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
            bodies.extend(record["body"] for record in event["Records"])
            return await inner(event, context)

        return handle

    return handler_for


@pytest.mark.parametrize("transport", ["sns_sqs", "eventbridge"])
async def test_aws_drops_small_invoices_before_they_reach_achievements(
    transport: str, moto_endpoint: str
) -> None:
    from adapters.aws.eventbridge import eventbridge
    from adapters.aws.sns_sqs import sns_sqs

    teach_moto_or_in_message_body()
    settings = AwsSettings(endpoint_url=moto_endpoint, retry_deadline=10.0)
    bodies: list[str] = []
    build = {"sns_sqs": sns_sqs, "eventbridge": eventbridge}[transport]
    app = f"ach{uuid.uuid4().hex[:10]}"
    async with Harness(
        BIG_ONLY,
        transport=build(settings, handler_for=recording(bodies)),
        clock=SystemClock(),
        app=app,
    ) as h:
        await h.publish(paid("inv-small", 1500), source="billing")
        await h.publish(paid("inv-big", 9900), source="billing")
        await h.settle()
    arrived = " ".join(bodies)
    assert "inv-big" in arrived
    assert "inv-small" not in arrived
    [unlocked] = [e.data_dict() for e in h.published_of("ACHIEVEMENT_UNLOCKED")]
    assert unlocked["achievement_id"] == "big_spender"
