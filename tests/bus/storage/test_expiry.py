"""Stores that expire what they hold: outbox heads, the in-memory table's TTL'd items and the
in-memory idempotency records are gone once their time is up, however many events passed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bus.clock import ManualClock
from bus.middleware import InMemoryIdempotencyStore
from bus.storage import InMemoryTable, OutboxRelay, Table, TableSpec, UnitOfWork, outbox_index

MakeTable = Callable[..., Awaitable[Table]]
DAY = 24 * 3600.0
HEAD = {"PK": "OUTBOX#user#1", "SK": "HEAD"}


async def _commit(table: Table, clock: ManualClock, *event_ids: str) -> None:
    async with UnitOfWork(table, now=clock.now, head_ttl=DAY) as uow:
        for event_id in event_ids:
            uow.publish(event_id.encode(), ordering_key="user#1", event_id=event_id)


async def test_an_outbox_head_expires_a_head_ttl_after_its_last_commit(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    await _commit(table, clock, "e1")
    assert await OutboxRelay(table, _discard, now=clock.now).relay_once() == 1

    clock.advance(DAY - 1)
    assert await table.get(HEAD) is not None
    clock.advance(2)

    assert await table.get(HEAD) is None


async def test_a_key_whose_head_expired_numbers_on_after_its_pending_events(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    await _commit(table, clock, "e1", "e2")
    clock.advance(2 * DAY)  # the relay was down all this time: e1 and e2 are still pending
    await _commit(table, clock, "e3")
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        published.extend(bodies)

    await OutboxRelay(table, publish, now=clock.now).relay_once()

    assert published == [b"e1", b"e2", b"e3"]


async def test_the_memory_table_deletes_expired_items_at_the_next_write() -> None:
    clock = ManualClock()
    table = InMemoryTable(TableSpec("t", ttl_attribute="expires_at"), now=clock.now)
    for n in range(100):
        await table.put({"PK": f"k{n}", "SK": "s", "expires_at": int(clock.now()) + 60})
    await table.put({"PK": "kept", "SK": "s"})
    clock.advance(61)

    await table.put({"PK": "new", "SK": "s", "expires_at": int(clock.now()) + 60})

    assert len(table) == 2


async def test_an_outbox_of_events_without_subject_leaves_nothing_once_heads_expire() -> None:
    clock = ManualClock()
    spec = TableSpec("t", indexes=(outbox_index(),), ttl_attribute="expires_at")
    table = InMemoryTable(spec, now=clock.now)
    relay = OutboxRelay(table, _discard, now=clock.now)
    for n in range(50):
        async with UnitOfWork(table, now=clock.now, head_ttl=DAY) as uow:
            uow.publish(b"{}", ordering_key=f"event-{n}", event_id=f"event-{n}")
        await relay.relay_once()
    clock.advance(DAY + 1)

    async with UnitOfWork(table, now=clock.now, head_ttl=DAY) as uow:
        uow.put({"PK": "user#1", "SK": "profile"})

    assert len(table) == 1


async def test_the_memory_idempotency_store_forgets_expired_records() -> None:
    clock = ManualClock()
    store = InMemoryIdempotencyStore(clock, ttl=60)
    for n in range(1000):
        assert await store.claim(f"handler#{n}", lease=30, token=f"t{n}") == "claimed"
        await store.complete(f"handler#{n}", token=f"t{n}")
    assert await store.claim("handler#1", lease=30, token="again") == "done"
    clock.advance(61)

    assert await store.claim("handler#new", lease=30, token="new") == "claimed"

    assert len(store) == 1


async def _discard(bodies: list[bytes]) -> None:
    pass


async def test_the_memory_idempotency_store_forgets_a_claim_lapsing_before_an_older_one() -> None:
    clock = ManualClock()
    store = InMemoryIdempotencyStore(clock, ttl=60)
    assert await store.claim("handler#slow", lease=1000, token="slow") == "claimed"
    assert await store.claim("handler#quick", lease=30, token="quick") == "claimed"
    await store.extend("handler#slow", 500, token="slow")
    clock.advance(31)

    assert await store.claim("handler#new", lease=30, token="new") == "claimed"

    assert len(store) == 2  # the quick claim lapsed and is forgotten; the slow one holds
    assert await store.claim("handler#slow", lease=30, token="other") == "in_progress"
