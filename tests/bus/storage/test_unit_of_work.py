"""A unit of work writes its items and its outgoing events together, or nothing at all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bus.clock import ManualClock
from bus.storage import (
    Attr,
    InMemoryTable,
    InvalidRequest,
    Key,
    OutboxRelay,
    StorageError,
    Table,
    TableSpec,
    TransactionCanceled,
    TransactionTooLarge,
    UnitOfWork,
    outbox_index,
)

MakeTable = Callable[..., Awaitable[Table]]


class Published:
    """The relay's publish callable: records what leaves, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []

    async def __call__(self, bodies: list[bytes]) -> None:
        self.batches.append(bodies)

    @property
    def bodies(self) -> list[bytes]:
        return [body for batch in self.batches for body in batch]


async def test_commit_writes_items_and_outbox_events_together(make_table: MakeTable) -> None:
    table = await make_table()

    async with UnitOfWork(table) as uow:
        uow.put({"PK": "user#1", "SK": "profile", "name": "Ada"})
        uow.update({"PK": "user#1", "SK": "stats"}, add={"logins": 1})
        uow.publish(b'{"type":"USER_CREATED"}', ordering_key="user#1", event_id="e1")

    assert await table.get({"PK": "user#1", "SK": "profile"}) is not None
    published = Published()
    assert await OutboxRelay(table, published).relay_once() == 1
    assert published.bodies == [b'{"type":"USER_CREATED"}']


async def test_exception_inside_the_unit_of_work_writes_nothing(make_table: MakeTable) -> None:
    table = await make_table()

    with pytest.raises(RuntimeError):
        async with UnitOfWork(table) as uow:
            uow.put({"PK": "user#1", "SK": "profile"})
            uow.publish(b"e", ordering_key="user#1", event_id="e1")
            raise RuntimeError("handler failed")

    assert await table.get({"PK": "user#1", "SK": "profile"}) is None
    assert await OutboxRelay(table, Published()).relay_once() == 0


async def test_failed_condition_writes_nothing_and_reports_the_staged_write(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    await table.put({"PK": "user#1", "SK": "profile"})

    with pytest.raises(TransactionCanceled) as canceled:
        async with UnitOfWork(table) as uow:
            uow.put({"PK": "user#2", "SK": "profile"})
            uow.put({"PK": "user#1", "SK": "profile"}, condition=Attr("PK").not_exists())
            uow.publish(b"e", ordering_key="user#1", event_id="e1")

    assert [reason.code for reason in canceled.value.reasons] == [None, "ConditionalCheckFailed"]
    assert await table.get({"PK": "user#2", "SK": "profile"}) is None
    assert await OutboxRelay(table, Published()).relay_once() == 0


async def test_events_survive_a_restart_and_are_published_once_in_commit_order(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    commits = [
        [("order#1", "a1"), ("order#1", "a2"), ("order#2", "b1")],
        [("order#2", "b2")],
        [("order#1", "a3")],
    ]
    for events in commits:
        async with UnitOfWork(table) as uow:
            for ordering_key, event_id in events:
                uow.publish(event_id.encode(), ordering_key=ordering_key, event_id=event_id)
    # The process dies here: committed, never relayed. After the restart, a new relay:
    published = Published()
    relay = OutboxRelay(table, published)

    assert await relay.relay_once() == 5
    assert await relay.relay_once() == 0
    assert await OutboxRelay(table, published).relay_once() == 0

    per_key: dict[str, list[bytes]] = {}
    for body in published.bodies:
        per_key.setdefault(body.decode()[0], []).append(body)
    assert per_key == {"a": [b"a1", b"a2", b"a3"], "b": [b"b1", b"b2"]}


async def test_a_relay_crashing_in_publish_loses_nothing(make_table: MakeTable) -> None:
    table = await make_table()
    async with UnitOfWork(table) as uow:
        for n in range(3):
            uow.publish(f"e{n}".encode(), ordering_key="k", event_id=f"e{n}")

    async def broken_publish(bodies: list[bytes]) -> None:
        raise ConnectionError("broker unreachable")

    assert await OutboxRelay(table, broken_publish).relay_once() == 0  # logged, kept

    published = Published()
    assert await OutboxRelay(table, published, batch_size=2).relay_once() == 3
    assert published.batches == [[b"e0", b"e1"], [b"e2"]]


async def test_outbox_items_follow_the_documented_layout(make_table: MakeTable) -> None:
    table = await make_table()
    clock = ManualClock()
    for event_id in ("x", "y"):
        async with UnitOfWork(table, now=clock.now, head_ttl=3600) as uow:
            uow.publish(event_id.encode(), ordering_key="cart#9", event_id=event_id)

    page = await table.query(Key("PK").eq("OUTBOX#cart#9"), consistent=True)

    first, second, head = page.items  # "EVENT#..." sorts before "HEAD"
    expires_at = int(clock.now()) + 3600  # the table's TTL attribute
    assert head == {"PK": "OUTBOX#cart#9", "SK": "HEAD", "next_seq": 2, "expires_at": expires_at}
    assert first["SK"] == "EVENT#00000000000000000000" and first["event_id"] == "x"
    assert second["SK"] == "EVENT#00000000000000000001" and second["body"] == b"y"
    assert second["outbox_shard"].startswith("PENDING#")


async def test_a_unit_of_work_too_large_for_one_transaction_is_refused(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    with pytest.raises(TransactionTooLarge, match="split the work"):
        async with UnitOfWork(table) as uow:
            for n in range(99):
                uow.put({"PK": "p", "SK": str(n)})
            uow.publish(b"e", ordering_key="k", event_id="e")
    assert await table.get({"PK": "p", "SK": "0"}) is None


async def test_a_unit_of_work_over_4mb_is_refused_saying_what_it_holds(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    with pytest.raises(TransactionTooLarge) as too_large:
        async with UnitOfWork(table) as uow:
            for n in range(9):
                uow.put({"PK": "p", "SK": str(n), "body": "x" * 400_000})
            for n in range(3):
                uow.publish(b"e" * 250_000, ordering_key="k", event_id=f"e{n}")
    assert "unit of work does not fit in one transaction (9 writes, 3 events" in str(
        too_large.value
    )
    assert "4 MB" in str(too_large.value)
    assert await table.get({"PK": "p", "SK": "0"}) is None


async def test_staging_after_commit_is_refused(make_table: MakeTable) -> None:
    table = await make_table()
    async with UnitOfWork(table) as uow:
        uow.put({"PK": "p", "SK": "1"})
    with pytest.raises(StorageError):
        uow.put({"PK": "p", "SK": "2"})


async def test_publishing_needs_a_table_with_an_outbox_index(make_table: MakeTable) -> None:
    table = await make_table(indexes=())
    with pytest.raises(InvalidRequest, match="outbox_index"):
        async with UnitOfWork(table) as uow:
            uow.publish(b"e", ordering_key="k", event_id="e")


class RacedTable(InMemoryTable):
    """A table where another process commits to the same ordering key right after our unit
    of work reads the outbox head, once."""

    raced = False

    async def get(self, key: Any, *, consistent: bool = False) -> dict[str, Any] | None:
        head = await super().get(key, consistent=consistent)
        if key.get("SK") == "HEAD" and not self.raced:
            self.raced = True
            async with UnitOfWork(self) as competitor:
                competitor.publish(b"theirs", ordering_key="k", event_id="theirs")
        return head


async def test_losing_the_race_for_the_sequence_retries_after_the_winner(
    clock: ManualClock,
) -> None:
    table: Table = RacedTable(TableSpec("raced", indexes=(outbox_index(),)), now=clock.now)

    async with UnitOfWork(table) as uow:
        uow.put({"PK": "p", "SK": "1"})
        uow.publish(b"ours", ordering_key="k", event_id="ours")

    published = Published()
    await OutboxRelay(table, published).relay_once()
    assert published.bodies == [b"theirs", b"ours"]
    assert await table.get({"PK": "p", "SK": "1"}) is not None
