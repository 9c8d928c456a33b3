"""Least privilege by declaration: a domain sends only the tasks it declares.

Run against every transport in `conftest.CASES`: an undeclared task never leaves, and the
record whose handler tried is parked with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from bus import Context, Domain, DomainSettings, Event, Task
from bus.testing import Harness
from bus.transport import DeadLetter

Build = Callable[..., Harness]
FAST = DomainSettings(visibility_timeout=1.0, max_receive_count=3, retry_attempts=1)


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str


class PrintLabel(Task):
    type = "PRINT_LABEL"
    domain = "shipping"
    order_id: str


class RefundOrder(Task):
    type = "REFUND_ORDER"
    domain = "shipping"
    order_id: str


def shipping(labels: list[str], refunds: list[str]) -> Domain:
    domain = Domain("shipping", FAST)

    @domain.task(PrintLabel)
    async def print_label(task: PrintLabel, ctx: Context) -> None:
        labels.append(task.order_id)

    @domain.task(RefundOrder)
    async def refund(task: RefundOrder, ctx: Context) -> None:
        refunds.append(task.order_id)

    return domain


async def _fulfil(
    harness: Build, sends: list[type[Task]], order_id: str
) -> tuple[list[str], list[str], list[DeadLetter]]:
    """An `orders` domain declaring `sends` sends a label and a refund for one order."""
    orders = Domain("orders", FAST, sends=sends)
    labels: list[str] = []
    refunds: list[str] = []

    @orders.on(OrderPlaced)
    async def fulfil(event: OrderPlaced, ctx: Context) -> None:
        ctx.send(PrintLabel(order_id=event.order_id))
        ctx.send(RefundOrder(order_id=event.order_id))

    async with harness(orders, shipping(labels, refunds)) as h:
        await h.publish(OrderPlaced(order_id=order_id), source="web")
        await h.settle()
        dead = await h.dead_letters("orders")
    return labels, refunds, dead


async def test_a_declared_task_is_delivered_and_an_undeclared_one_never_leaves(
    harness: Build,
) -> None:
    labels, refunds, dead = await _fulfil(harness, [PrintLabel], "o1")

    assert labels == [] and refunds == []
    assert len(dead) == 1
    assert dead[0].reason is not None
    assert "orders" in dead[0].reason and "REFUND_ORDER" in dead[0].reason


async def test_a_domain_declaring_a_task_sends_it(harness: Build) -> None:
    assert await _fulfil(harness, [PrintLabel, RefundOrder], "o2") == (["o2"], ["o2"], [])
