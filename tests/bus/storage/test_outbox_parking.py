"""What can never leave the outbox never holds up its key: refused when staged if it is over
the smallest publish path's size, parked by the relay if publishing refuses it for good."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from bus.errors import MessageTooLarge, PermanentError
from bus.storage import OutboxRelay, Table, UnitOfWork

MakeTable = Callable[..., Awaitable[Table]]


async def test_the_raw_unit_of_work_refuses_an_event_over_256_kib(make_table: MakeTable) -> None:
    table = await make_table()

    with pytest.raises(MessageTooLarge, match="outbox event big"):
        async with UnitOfWork(table) as uow:
            uow.publish(b"x" * 300_000, ordering_key="k", event_id="big")

    assert not await OutboxRelay(table, _refuse).relay_once()


async def test_a_parked_item_is_deleted_and_the_events_after_it_are_published(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    for body in (b"e0", b"poison", b"e2"):
        async with UnitOfWork(table) as uow:
            uow.publish(body, ordering_key="k", event_id=body.decode())
    published: list[bytes] = []
    parked: list[tuple[str, str]] = []

    async def publish(bodies: list[bytes]) -> None:
        if b"poison" in bodies:
            raise PermanentError("refused for good")
        published.extend(bodies)

    async def park(item: dict[str, Any], reason: str) -> None:
        parked.append((item["event_id"], reason))

    relay = OutboxRelay(table, publish, park=park)
    assert await relay.relay_once() == 2

    assert published == [b"e0", b"e2"]
    assert parked == [("poison", "PermanentError: refused for good")]
    assert await relay.relay_once() == 0


async def test_two_passes_of_one_relay_at_once_park_an_item_once(make_table: MakeTable) -> None:
    """A relay loop woken by a commit and a caller settling can pass at the same moment: the
    refused item reaches its dead-letter queue once, each good event is published once."""
    table = await make_table()
    for body in (b"poison", b"e1"):
        async with UnitOfWork(table) as uow:
            uow.publish(body, ordering_key="k", event_id=body.decode())
    published: list[bytes] = []
    parked: list[str] = []

    async def publish(bodies: list[bytes]) -> None:
        await anyio.lowlevel.checkpoint()
        if b"poison" in bodies:
            raise PermanentError("refused for good")
        published.extend(bodies)

    async def park(item: dict[str, Any], reason: str) -> None:
        await anyio.lowlevel.checkpoint()
        parked.append(item["event_id"])

    relay = OutboxRelay(table, publish, park=park)
    async with anyio.create_task_group() as group:
        group.start_soon(relay.relay_once)
        group.start_soon(relay.relay_once)

    assert parked == ["poison"]
    assert published == [b"e1"]


async def test_without_park_an_unpublishable_item_stays_pending(make_table: MakeTable) -> None:
    table = await make_table()
    async with UnitOfWork(table) as uow:
        uow.publish(b"poison", ordering_key="k", event_id="poison")

    assert await OutboxRelay(table, _refuse).relay_once() == 0
    assert await OutboxRelay(table, _refuse).relay_once() == 0


async def _refuse(bodies: list[bytes]) -> None:
    raise PermanentError("refused for good")


async def test_parking_logs_the_items_event_id_and_correlation_id(
    make_table: MakeTable, caplog: pytest.LogCaptureFixture
) -> None:
    table = await make_table()
    body = b'{"id": "e1", "type": "USER_CREATED", "correlationid": "signup-1", "data": {}}'
    async with UnitOfWork(table) as uow:
        uow.publish(body, ordering_key="k", event_id="e1")
    caplog.set_level("ERROR", logger="bus.storage.outbox")

    async def park(item: dict[str, Any], reason: str) -> None:
        pass

    assert await OutboxRelay(table, _refuse, park=park).relay_once() == 0

    [line] = [record for record in caplog.records if record.name == "bus.storage.outbox"]
    assert (line.event_id, line.correlation_id) == ("e1", "signup-1")  # type: ignore[attr-defined]
