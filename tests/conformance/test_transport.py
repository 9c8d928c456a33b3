"""Transport conformance: the delivery behaviour production code relies on.

Written once and run unchanged against every transport in `conftest.CASES`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from bus import Context, Domain, DomainSettings, Event, Task
from bus.envelope import Envelope
from bus.errors import MessageTooLarge
from bus.testing import Harness

from .conftest import Features

Build = Callable[..., Harness]
FAST = DomainSettings(visibility_timeout=1.0, max_receive_count=3, retry_attempts=1)


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str
    total: int = 0


class OrderShipped(Event):
    type = "ORDER_SHIPPED"
    order_id: str


class Ignored(Event):
    type = "NOBODY_LISTENS"
    note: str


class PrintLabel(Task):
    type = "PRINT_LABEL"
    domain = "shipping"
    order_id: str


def recorder(name: str, *events: type[Event]) -> tuple[Domain, list[tuple[str, str]]]:
    """A domain recording (event type, order id) for each event class it subscribes to."""
    domain = Domain(name, FAST)
    seen: list[tuple[str, str]] = []
    for event_class in events:

        @domain.on(event_class, name=f"record_{event_class.type.lower()}")
        async def record(event: Event, ctx: Context) -> None:
            seen.append((event.type, getattr(event, "order_id", "")))

    return domain, seen


async def test_publish_fans_out_to_every_subscriber_and_only_to_subscribers(build: Build) -> None:
    billing, billing_seen = recorder("billing", OrderPlaced)
    shipping, shipping_seen = recorder("shipping", OrderPlaced, OrderShipped)
    audit, audit_seen = recorder("audit", OrderShipped)
    async with build(billing, shipping, audit) as h:
        await h.publish(OrderPlaced(order_id="o1"), source="orders")
        await h.publish(OrderShipped(order_id="o1"), source="orders")
        await h.publish(Ignored(note="no subscriber"), source="orders")
        await h.settle()
    assert billing_seen == [("ORDER_PLACED", "o1")]
    assert sorted(shipping_seen) == [("ORDER_PLACED", "o1"), ("ORDER_SHIPPED", "o1")]
    assert audit_seen == [("ORDER_SHIPPED", "o1")]
    assert not h.results("parked") and not h.results("failed")


async def test_duplicate_deliveries_have_one_effect_through_idempotency(build: Build) -> None:
    billing, seen = recorder("billing", OrderPlaced)
    async with build(billing) as h:
        envelope = await h.publish(OrderPlaced(order_id="o1"), source="orders")
        await h.runtime.publisher.publish([envelope, envelope])  # redelivered twice more
        await h.settle()
    assert seen == [("ORDER_PLACED", "o1")]
    assert len(h.results("skipped")) == 2


async def test_partial_batch_failure_retries_only_the_failed_record(build: Build) -> None:
    billing = Domain("billing", FAST)
    calls: Counter[str] = Counter()

    @billing.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        calls[event.order_id] += 1
        if event.order_id == "o3" and calls["o3"] == 1:
            raise RuntimeError("card processor unavailable")

    async with build(billing) as h:
        context = h.runtime.context("orders")
        for n in range(1, 6):
            context.publish(OrderPlaced(order_id=f"o{n}"))
        await h.runtime.publisher.publish(context.outbox)  # one batch call, five events
        await h.settle()
    assert calls == {"o1": 1, "o2": 1, "o3": 2, "o4": 1, "o5": 1}
    assert not h.results("skipped"), "records that succeeded were delivered again"
    assert len(h.handled("billing.charge")) == 5


async def test_record_failing_max_receive_count_times_lands_in_dlq_intact(
    build: Build, features: Features
) -> None:
    billing = Domain("billing", FAST)
    attempts: list[str] = []

    @billing.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        attempts.append(event.order_id)
        raise RuntimeError("ledger is read-only")

    async with build(billing) as h:
        envelope = await h.publish(OrderPlaced(order_id="o9", total=42), source="orders")
        await h.settle()
        dead = await h.dead_letters("billing")
    assert attempts == ["o9"] * FAST.max_receive_count
    assert len(dead) == 1
    assert Envelope.decode(dead[0].body) == Envelope.decode(envelope.encode())
    if features.exhausted_reasons:
        assert dead[0].reason is not None and "ledger is read-only" in dead[0].reason


async def test_redrive_returns_dead_letters_to_their_queue(build: Build) -> None:
    billing = Domain("billing", FAST)
    broken = True
    charged: list[str] = []

    @billing.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        if broken:
            raise RuntimeError("bug in charge()")
        charged.append(event.order_id)

    async with build(billing) as h:
        await h.publish(OrderPlaced(order_id="o7"), source="orders")
        await h.settle()
        assert len(await h.dead_letters("billing")) == 1
        broken = False  # the fix is deployed
        assert await h.redrive("billing") == 1
        await h.settle()
        assert await h.dead_letters("billing") == []
    assert charged == ["o7"]


async def test_unreadable_newer_version_is_parked_without_failing_its_batch(build: Build) -> None:
    billing, seen = recorder("billing", OrderPlaced)
    async with build(billing) as h:
        context = h.runtime.context("orders")
        context.publish(OrderPlaced(order_id="before"))
        unreadable = _envelope_like(context.publish(OrderPlaced(order_id="x")), 3, {"id": 1})
        tolerant = _envelope_like(
            context.publish(OrderPlaced(order_id="x")), 2, {"order_id": "newer", "tax": 3}
        )
        context.publish(OrderPlaced(order_id="after"))
        batch = [context.outbox[0], unreadable, tolerant, context.outbox[3]]
        await h.runtime.publisher.publish(batch)
        await h.settle()
        dead = await h.dead_letters("billing")
    assert sorted(seen) == [
        ("ORDER_PLACED", "after"),
        ("ORDER_PLACED", "before"),
        ("ORDER_PLACED", "newer"),
    ]
    assert [Envelope.decode(d.body).id for d in dead] == [unreadable.id]
    # Parked at once: the reason travels with the record on every transport.
    assert dead[0].reason is not None and "version 3" in dead[0].reason
    assert not h.results("failed")


async def test_oversized_message_is_rejected_with_the_size_and_the_limit(
    build: Build, features: Features
) -> None:
    billing, seen = recorder("billing", OrderPlaced)
    async with build(billing) as h:
        with pytest.raises(MessageTooLarge) as raised:
            oversized = "x" * (features.publish_limit + 40_000)
            await h.publish(OrderPlaced(order_id=oversized), source="orders")
        await h.settle()
    error = raised.value
    assert error.limit == features.publish_limit and error.size > error.limit
    assert str(error.limit) in str(error) and str(error.size) in str(error)
    assert seen == []


async def test_correlation_id_flows_through_events_published_by_handlers(build: Build) -> None:
    orders = Domain("orders", FAST)
    shipping = Domain("shipping", FAST)
    observed: list[tuple[str, str | None]] = []

    @orders.on(OrderPlaced)
    async def ship(event: OrderPlaced, ctx: Context) -> None:
        ctx.publish(OrderShipped(order_id=event.order_id))

    @shipping.on(OrderShipped)
    async def notify(event: OrderShipped, ctx: Context) -> None:
        observed.append((ctx.correlation_id, ctx.causation_id))

    async with build(orders, shipping) as h:
        placed = await h.publish(OrderPlaced(order_id="o1"), source="web", correlation_id="req-1")
        await h.settle()
    shipped = h.published_of("ORDER_SHIPPED")
    assert len(shipped) == 1
    assert shipped[0].correlationid == "req-1" and shipped[0].causationid == placed.id
    assert observed == [("req-1", shipped[0].id)]


async def test_task_sent_by_a_handler_reaches_only_the_owning_domains_task_queue(
    build: Build,
) -> None:
    orders = Domain("orders", FAST, sends=[PrintLabel])
    shipping = Domain("shipping", FAST)
    labels: list[str] = []

    @orders.on(OrderPlaced)
    async def request_label(event: OrderPlaced, ctx: Context) -> None:
        ctx.send(PrintLabel(order_id=event.order_id))

    @shipping.task(PrintLabel)
    async def print_label(task: PrintLabel, ctx: Context) -> None:
        labels.append(task.order_id)

    async with build(orders, shipping) as h:
        await h.publish(OrderPlaced(order_id="o5"), source="web")
        await h.settle()
    assert labels == ["o5"]
    # On a real transport the task can be handled before its sender's outcome is recorded.
    assert sorted(str(o.handler) for o in h.handled()) == [
        "orders.request_label",
        "shipping.print_label",
    ]


async def test_content_filter_delivers_only_matching_events(build: Build) -> None:
    vip = Domain("vip", FAST)
    big: list[str] = []

    @vip.on(OrderPlaced, where={"total": [{"numeric": [">=", 100]}]})
    async def thank(event: OrderPlaced, ctx: Context) -> None:
        big.append(event.order_id)

    async with build(vip) as h:
        for order_id, total in (("small", 5), ("large", 250), ("edge", 100)):
            await h.publish(OrderPlaced(order_id=order_id, total=total), source="orders")
        await h.settle()
    assert sorted(big) == ["edge", "large"]


def _envelope_like(template: Envelope, version: int, data: dict[str, object]) -> Envelope:
    """The same event as another producer version would have written it."""
    raw = orjson.loads(template.encode())
    raw["dataversion"] = version
    raw["data"] = data
    return Envelope.from_dict(raw)


@pytest.fixture
def build(harness: Build) -> Build:
    return harness
