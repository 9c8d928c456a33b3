"""The AWS transports deliver what the in-memory transport delivers, and refuse what AWS would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from adapters.aws.poller import LambdaHandler
from adapters.aws.session import AwsSettings
from bus import Context, Domain, DomainSettings, Event, Task
from bus.clock import Clock, ManualClock, SystemClock
from bus.dispatch import Dispatcher
from bus.envelope import Envelope
from bus.errors import MessageTooLarge
from bus.testing import Harness
from bus.topology import Topology
from bus.transport import Transport
from tests.adapters.aws.conftest import factory

FAST = DomainSettings(visibility_timeout=1.0, max_receive_count=2, retry_attempts=1)


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str
    total: int
    region: str


class OrderCancelled(Event):
    type = "ORDER_CANCELLED"
    order_id: str
    reason: str


class RefundOrder(Task):
    type = "REFUND_ORDER"
    domain = "billing"
    order_id: str


Seen = list[tuple[str, str, str]]


def shop() -> tuple[list[Domain], Seen]:
    """Three domains; billing mixes a plain and a filtered subscription on one queue."""
    seen: Seen = []
    billing = Domain("billing", FAST, sends=[RefundOrder])
    vip = Domain("vip", FAST)
    audit = Domain("audit", FAST)

    @billing.on(OrderPlaced)
    async def invoice(event: OrderPlaced, ctx: Context) -> None:
        seen.append(("billing.invoice", event.type, event.order_id))

    @billing.on(OrderCancelled, where={"reason": ["fraud"]})
    async def claw_back(event: OrderCancelled, ctx: Context) -> None:
        seen.append(("billing.claw_back", event.type, event.order_id))
        ctx.send(RefundOrder(order_id=event.order_id))

    @billing.task(RefundOrder)
    async def refund(task: RefundOrder, ctx: Context) -> None:
        seen.append(("billing.refund", task.type, task.order_id))

    @vip.on(OrderPlaced, where={"total": [{"numeric": [">=", 100]}], "region": ["eu"]})
    async def thank(event: OrderPlaced, ctx: Context) -> None:
        seen.append(("vip.thank", event.type, event.order_id))

    @audit.on(OrderCancelled)
    async def record(event: OrderCancelled, ctx: Context) -> None:
        seen.append(("audit.record", event.type, event.order_id))

    return [billing, vip, audit], seen


SEQUENCE: list[Event] = [
    OrderPlaced(order_id="o1", total=250, region="eu"),
    OrderPlaced(order_id="o2", total=250, region="us"),
    OrderPlaced(order_id="o3", total=100, region="eu"),
    OrderPlaced(order_id="o4", total=99, region="eu"),
    OrderCancelled(order_id="o2", reason="fraud"),
    OrderCancelled(order_id="o4", reason="changed mind"),
]

EXPECTED = sorted(
    [
        *(("billing.invoice", "ORDER_PLACED", o) for o in ("o1", "o2", "o3", "o4")),
        ("vip.thank", "ORDER_PLACED", "o1"),
        ("vip.thank", "ORDER_PLACED", "o3"),
        ("billing.claw_back", "ORDER_CANCELLED", "o2"),
        ("billing.refund", "REFUND_ORDER", "o2"),
        ("audit.record", "ORDER_CANCELLED", "o2"),
        ("audit.record", "ORDER_CANCELLED", "o4"),
    ]
)


async def run(transport: str, settings: AwsSettings, app: str) -> Seen:
    domains, seen = shop()
    clock = ManualClock() if transport == "memory" else SystemClock()
    async with Harness(*domains, transport=factory(transport, settings), clock=clock, app=app) as h:
        context = h.runtime.context("orders")
        for event in SEQUENCE:
            context.publish(event)
        await h.runtime.publisher.publish(context.outbox)
        await h.settle()
        assert not h.results("failed") and not h.results("parked")
    return sorted(seen)


async def test_memory_and_aws_transports_deliver_the_same_events_to_the_same_handlers(
    settings: AwsSettings, app: str
) -> None:
    delivered = {
        name: await run(name, settings, f"{app}{index}")
        for index, name in enumerate(("memory", "sns_sqs", "eventbridge"))
    }
    assert delivered["memory"] == EXPECTED
    assert delivered["sns_sqs"] == EXPECTED
    assert delivered["eventbridge"] == EXPECTED


@pytest.mark.parametrize("transport", ["sns_sqs", "eventbridge"])
async def test_aws_routing_drops_unwanted_events_before_they_reach_a_queue(
    transport: str, settings: AwsSettings, app: str
) -> None:
    """The filter policy or rule pattern does the filtering: no handler sees a miss."""
    domains, seen = shop()
    transport_factory = factory(transport, settings)
    async with Harness(*domains, transport=transport_factory, clock=SystemClock(), app=app) as h:
        for event in SEQUENCE:
            await h.publish(event, source="orders")
        await h.settle()
    assert sorted(seen) == EXPECTED
    assert not h.results("filtered"), "an event the subscription rejects reached a queue"


async def test_sns_counts_message_attributes_towards_its_256_kib_limit(
    settings: AwsSettings, app: str
) -> None:
    domains, seen = shop()
    async with Harness(*domains, transport=factory("sns_sqs", settings), app=app) as h:
        probe = h.runtime.context("orders").publish(OrderCancelled(order_id="", reason="fraud"))
        overhead = len(probe.encode())
        # The body alone fits the limit by a few bytes; its attributes push it over.
        fits_alone = OrderCancelled(order_id="x" * (256 * 1024 - overhead - 4), reason="fraud")
        with pytest.raises(MessageTooLarge) as raised:
            await h.publish(fits_alone, source="orders")
        await h.settle()
    assert raised.value.service == "SNS" and raised.value.limit == 256 * 1024
    assert seen == []


async def test_task_over_the_sqs_limit_is_refused_before_anything_is_sent(
    settings: AwsSettings, app: str
) -> None:
    domains, seen = shop()
    async with Harness(*domains, transport=factory("sns_sqs", settings), app=app) as h:
        with pytest.raises(MessageTooLarge) as raised:
            await h.runtime.publisher.send(
                [
                    h.runtime.context("orders").send(RefundOrder(order_id="small")),
                    h.runtime.context("orders").send(RefundOrder(order_id="x" * 1024 * 1024)),
                ]
            )
        await h.settle()
    assert raised.value.service == "SQS" and raised.value.limit == 1024 * 1024
    assert seen == [], "a batch with one oversized task sent the others"


async def test_eventbridge_refuses_an_entry_over_its_1_mib_limit(
    settings: AwsSettings, app: str
) -> None:
    domains, seen = shop()
    async with Harness(*domains, transport=factory("eventbridge", settings), app=app) as h:
        with pytest.raises(MessageTooLarge) as raised:
            await h.publish(OrderPlaced(order_id="x" * 1024 * 1024, total=1, region="eu"))
        await h.publish(OrderPlaced(order_id="x" * 300_000, total=1, region="eu"))  # over SNS's
        await h.settle()
    assert raised.value.service == "EventBridge" and raised.value.limit == 1024 * 1024
    assert [s[0] for s in seen] == ["billing.invoice"]


@pytest.mark.parametrize("transport", ["sns_sqs", "eventbridge"])
async def test_consumers_get_the_envelope_and_sns_carries_its_attributes(
    transport: str, settings: AwsSettings, app: str
) -> None:
    """Filter policies and tracing read `type`, `dataversion`, `source`, `correlationid` and
    `traceparent` off the SNS message; EventBridge carries them in the envelope alone."""

    from adapters.aws.eventbridge import EventBridgeTransport
    from adapters.aws.sns_sqs import SnsSqsTransport
    from adapters.lambda_.sqs import sqs_batch_handler

    events: list[dict[str, Any]] = []
    domains, seen = shop()
    kind = SnsSqsTransport if transport == "sns_sqs" else EventBridgeTransport

    def build(topology: Topology, clock: Clock) -> Transport:
        made: SnsSqsTransport | EventBridgeTransport

        def recording(dispatcher: Dispatcher, sqs: Any) -> LambdaHandler:
            async def handle(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
                events.append(event)
                return await sqs_batch_handler(dispatcher, sqs)(event, context)

            return handle

        made = kind(topology, settings, handler_for=recording)
        return made

    async with Harness(*domains, transport=build, clock=SystemClock(), app=app) as h:
        placed = h.runtime.context("orders", correlation_id="req-7").publish(
            OrderPlaced(order_id="o1", total=5, region="us")
        )
        traced = placed._replace(
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        )
        await h.runtime.publisher.publish([traced])
        await h.settle()
    assert seen == [("billing.invoice", "ORDER_PLACED", "o1")]
    [record] = [r for e in events for r in e["Records"]]
    attributes = {k: v.get("stringValue") for k, v in record["messageAttributes"].items()}
    if transport == "sns_sqs":
        assert attributes == {
            "type": "ORDER_PLACED",
            "dataversion": "1",
            "source": "orders",
            "correlationid": "req-7",
            "traceparent": traced.traceparent,
        }
        assert record["messageAttributes"]["dataversion"]["dataType"] == "Number"
        assert Envelope.decode(record["body"]) == Envelope.decode(traced.encode())
    else:
        body = orjson.loads(record["body"])
        assert body["source"] == "orders" and body["detail-type"] == "ORDER_PLACED"
        assert Envelope.from_dict(body["detail"]) == Envelope.decode(traced.encode())
