"""Idempotency records live in the domain's table and expire by TTL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bus.clock import ManualClock
from bus.middleware import IdempotencyStore
from bus.storage import InvalidRequest, Table, TableIdempotencyStore

MakeTable = Callable[..., Awaitable[Table]]


async def test_marked_key_is_done_until_its_ttl_passes(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store: IdempotencyStore = TableIdempotencyStore(
        await make_table(), ttl_seconds=60, now=clock.now
    )

    assert not await store.is_done("send_welcome:e1")
    await store.mark_done("send_welcome:e1")

    assert await store.is_done("send_welcome:e1")
    assert not await store.is_done("send_welcome:e2")
    clock.advance(61)
    assert not await store.is_done("send_welcome:e1")


async def test_table_without_ttl_attribute_is_refused(make_table: MakeTable) -> None:
    with pytest.raises(InvalidRequest, match="ttl_attribute"):
        TableIdempotencyStore(await make_table(ttl_attribute=None))
