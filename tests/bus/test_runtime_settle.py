"""A runtime serving on its own (consumers, relay loop, schedule ticker), as `tctf run` and
`tctf run --aws` serve: `Runtime.settle()` returns once it is quiet, and the relay reads
only the outboxes that commits filled."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bus import Context, Domain, Event, Task
from bus.clock import Clock, ManualClock
from bus.domain import Storage
from bus.memory import in_memory
from bus.runtime import Runtime
from bus.storage import InMemoryTable, TableSpec


class Ordered(Event):
    type = "ORDERED"
    order: str


class Shipped(Event):
    type = "SHIPPED"
    order: str


class Restock(Task):
    type = "RESTOCK"
    domain = "warehouse"


def shop() -> Domain:
    domain = Domain("shop", storage=Storage())

    @domain.on(Ordered)
    async def ship(event: Ordered, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.put({"PK": f"ORDER#{event.order}", "SK": "STATE", "shipped": True})
            uow.publish(Shipped(order=event.order), subject=event.order)

    return domain


def warehouse(shipped: Counter[str], restocked: list[str]) -> Domain:
    domain = Domain("warehouse", storage=Storage())

    @domain.on(Shipped)
    async def count(event: Shipped, ctx: Context) -> None:
        shipped[event.order] += 1

    @domain.task(Restock)
    async def restock(task: Restock, ctx: Context) -> None:
        assert ctx.envelope is not None
        restocked.append(ctx.envelope.time)

    domain.every("rate(1 hour)", Restock())
    return domain


class CountingTable(InMemoryTable):
    """An in-memory table that counts the queries made of it."""

    def __init__(self, spec: TableSpec, clock: Clock) -> None:
        super().__init__(spec, now=clock.now)
        self.queries = 0

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        return await super().query(*args, **kwargs)


async def test_settle_returns_once_the_cascade_is_delivered_and_the_schedule_fired() -> None:
    shipped: Counter[str] = Counter()
    restocked: list[str] = []
    clock = ManualClock()
    runtime = Runtime([shop(), warehouse(shipped, restocked)], in_memory(seed=3), clock=clock)
    async with runtime.running():
        await runtime.publish(Ordered(order="o1"), source="test")
        await runtime.settle()
        shipped_then = dict(shipped)
        clock.advance(3600)
        await runtime.settle()
        pending = [name for name, relay in runtime.relays.items() if await relay.pending()]
    assert shipped_then == {"o1": 1}
    assert restocked == ["2026-01-01T01:00:00.000Z"]
    assert pending == []


async def test_a_commit_has_the_relay_read_its_own_outbox_and_no_other() -> None:
    tables: dict[str, CountingTable] = {}

    def counting(spec: TableSpec, clock: Clock) -> CountingTable:
        return tables.setdefault(spec.name, CountingTable(spec, clock))

    shipped: Counter[str] = Counter()
    runtime = Runtime(
        [shop(), warehouse(shipped, [])], in_memory(seed=3), clock=ManualClock(), tables=counting
    )
    async with runtime.running():
        await runtime.settle()  # the first pass reads every outbox: a run before may have left some
        for table in tables.values():
            table.queries = 0
        await runtime.publish(Ordered(order="o2"), source="test")
        await runtime.settle()
    assert shipped == {"o2": 1}
    assert tables["tctf-shop"].queries > 0
    assert tables["tctf-warehouse"].queries == 0  # it committed no event


async def test_a_delivered_record_is_aged_from_when_its_queue_took_it() -> None:
    """As SQS's `SentTimestamp`: a record's age (`RecordAge`) counts from when its queue
    took it, not from the envelope's `time` (an event relayed or replayed late)."""
    from bus.clock import timestamp
    from bus.dispatch import Outcome
    from bus.envelope import Envelope

    clock = ManualClock()
    outcomes: list[Outcome] = []
    runtime = Runtime(
        [warehouse(Counter(), [])], in_memory(seed=3), clock=clock, observers=[outcomes.append]
    )
    async with runtime.running():
        made_a_minute_ago = timestamp(clock.now() - 60)
        late = Envelope("e-1", "shop", "SHIPPED", made_a_minute_ago, 1, "c-1", Shipped(order="o1"))
        await runtime.publisher.publish([late])
        await runtime.settle()
    counted = [(o.status, o.sent_at) for o in outcomes if o.handler == "warehouse.count"]
    assert counted == [("handled", clock.now())]
