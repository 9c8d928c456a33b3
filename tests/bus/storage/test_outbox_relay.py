"""The relay: a background loop owned by a task group, or one pass of the events older than
an age (the Lambda's scheduled sweep), stopping when told to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from bus.clock import ManualClock
from bus.errors import ConfigurationError
from bus.storage import (
    InMemoryTable,
    InvalidRequest,
    KeyAttribute,
    KeyType,
    OutboxRelay,
    Table,
    TableSpec,
    UnitOfWork,
    outbox_index,
)

MakeTable = Callable[..., Awaitable[Table]]


async def test_run_publishes_commits_as_they_happen_until_cancelled(make_table: MakeTable) -> None:
    table = await make_table()
    seen: list[bytes] = []
    arrived = anyio.Event()

    async def publish(bodies: list[bytes]) -> None:
        seen.extend(bodies)
        if len(seen) == 2:
            arrived.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(OutboxRelay(table, publish).run, 0.01)
        for n in range(2):
            async with UnitOfWork(table) as uow:
                uow.publish(f"e{n}".encode(), ordering_key="k", event_id=f"e{n}")
        with anyio.fail_after(10):
            await arrived.wait()
        tasks.cancel_scope.cancel()

    assert seen == [b"e0", b"e1"]


async def test_run_keeps_going_after_a_failed_pass(make_table: MakeTable) -> None:
    table = await make_table()
    attempts = 0
    done = anyio.Event()

    async def flaky_publish(bodies: list[bytes]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("broker unreachable")
        done.set()

    async with UnitOfWork(table) as uow:
        uow.publish(b"e", ordering_key="k", event_id="e")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(OutboxRelay(table, flaky_publish).run, 0.01)
        with anyio.fail_after(10):
            await done.wait()
        tasks.cancel_scope.cancel()

    assert attempts == 2


async def test_a_key_whose_events_cannot_be_published_does_not_hold_back_the_others(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    for key in ("stuck", "k1", "k2"):
        async with UnitOfWork(table) as uow:
            uow.publish(key.encode(), ordering_key=key, event_id=f"{key}-1")
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        if b"stuck" in bodies:
            raise RuntimeError("topic refuses it")
        published.extend(bodies)

    relay = OutboxRelay(table, publish)
    assert await relay.relay_once() == 2
    assert sorted(published) == [b"k1", b"k2"]
    assert await relay.relay_once() == 0  # the stuck one stays pending, nothing is lost


async def _commit(table: Table, ordering_key: str, *ids: str, at: float) -> None:
    async with UnitOfWork(table, now=lambda: at) as uow:
        for id in ids:
            uow.publish(id.encode(), ordering_key=ordering_key, event_id=id)


async def _pending(table: Table) -> list[bytes]:
    seen: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        seen.extend(bodies)

    await OutboxRelay(table, publish).relay_once()
    return sorted(seen)


async def test_older_than_publishes_only_events_committed_at_least_that_long_ago_in_order(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    await _commit(table, "a", "a0", "a1", "a2", at=clock.now())
    await _commit(table, "b", "b0", at=clock.now())
    clock.advance(600)
    await _commit(table, "a", "a3", at=clock.now())
    await _commit(table, "c", "c0", at=clock.now())
    clock.advance(300)
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        published.extend(bodies)

    relay = OutboxRelay(table, publish, batch_size=2, now=clock.now)
    assert await relay.relay_once(older_than=900) == 4

    assert [b for b in published if b.startswith(b"a")] == [b"a0", b"a1", b"a2"]
    assert sorted(published) == [b"a0", b"a1", b"a2", b"b0"]
    assert await _pending(table) == [b"a3", b"c0"]  # younger than 900 s: left where they are


async def test_older_than_stops_at_a_keys_first_younger_event_so_order_holds(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    now = clock.now()
    await _commit(table, "k", "k0", at=now - 1000)
    await _commit(table, "k", "k1", at=now - 10)
    await _commit(table, "k", "k2", at=now - 5000)  # committed later, by a writer whose clock lags
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        published.extend(bodies)

    assert await OutboxRelay(table, publish, now=clock.now).relay_once(older_than=900) == 1

    assert published == [b"k0"]
    assert await _pending(table) == [b"k1", b"k2"]


async def test_should_stop_ends_the_pass_between_keys_leaving_the_rest_pending(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    for key in ("k1", "k2", "k3"):
        await _commit(table, key, f"{key}-0", at=clock.now())
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        published.extend(bodies)

    relay = OutboxRelay(table, publish, now=clock.now)
    assert await relay.relay_once(should_stop=lambda: len(published) >= 1) == 1

    assert len(published) == 1
    assert len(await _pending(table)) == 2


async def test_should_stop_is_asked_between_batches_of_one_key_and_order_holds(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    await _commit(table, "k", "k0", "k1", "k2", at=clock.now())
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        published.extend(bodies)

    relay = OutboxRelay(table, publish, batch_size=2, now=clock.now)
    assert await relay.relay_once(older_than=0, should_stop=lambda: len(published) >= 2) == 2

    assert published == [b"k0", b"k1"]
    assert await relay.relay_once() == 1 and published == [b"k0", b"k1", b"k2"]


async def test_publish_items_is_handed_the_outbox_items_themselves(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    await _commit(table, "k", "k0", at=clock.now())
    handed: list[dict[str, Any]] = []

    async def publish_items(items: list[dict[str, Any]]) -> None:
        handed.extend(items)

    assert await OutboxRelay(table, publish_items=publish_items).relay_once() == 1

    (item,) = handed
    assert (item["PK"], item["SK"], item["event_id"]) == ("OUTBOX#k", f"EVENT#{0:020d}", "k0")
    assert bytes(item["body"]) == b"k0" and item["committed_at"] == clock.now()
    assert await _pending(table) == []


async def test_a_relay_takes_exactly_one_way_to_publish(make_table: MakeTable) -> None:
    table = await make_table()

    async def publish(bodies: list[bytes]) -> None: ...

    with pytest.raises(ConfigurationError, match=r"one of publish \(bodies\) or publish_items"):
        OutboxRelay(table)
    with pytest.raises(ConfigurationError, match="one of publish"):
        OutboxRelay(table, publish, publish_items=publish)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    [
        TableSpec("lower", KeyAttribute("pk"), KeyAttribute("sk"), indexes=(outbox_index(),)),
        TableSpec(
            "numbers", sort_key=KeyAttribute("SK", KeyType.NUMBER), indexes=(outbox_index(),)
        ),
        TableSpec("no-index"),
    ],
    ids=["other key names", "a number sort key", "no outbox index"],
)
def test_a_table_an_outbox_reader_could_not_read_is_refused(spec: TableSpec) -> None:
    """A table's stream relay reads outbox items by their PK and SK: under other names it
    would take them for other items and a sweep would delete them unpublished."""
    with pytest.raises(InvalidRequest, match="cannot hold an outbox"):
        OutboxRelay(InMemoryTable(spec), publish=_ignore)
    with pytest.raises(InvalidRequest, match="cannot hold an outbox"):
        UnitOfWork(InMemoryTable(spec)).publish(b"e", ordering_key="k", event_id="e")


async def _ignore(bodies: list[bytes]) -> None:
    return None
