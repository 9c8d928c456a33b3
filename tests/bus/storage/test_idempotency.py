"""Idempotency records live in the domain's table and expire by TTL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bus.clock import ManualClock
from bus.middleware import IdempotencyStore
from bus.storage import InvalidRequest, Table, TableIdempotencyStore

MakeTable = Callable[..., Awaitable[Table]]


async def test_a_completed_key_is_done_until_its_ttl_passes(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store: IdempotencyStore = TableIdempotencyStore(
        await make_table(), ttl_seconds=60, now=clock.now
    )

    assert await store.claim("send_welcome#e1", lease=30) == "claimed"
    await store.complete("send_welcome#e1")

    assert await store.claim("send_welcome#e1", lease=30) == "done"
    assert await store.claim("send_welcome#e2", lease=30) == "claimed"
    clock.advance(61)
    assert await store.claim("send_welcome#e1", lease=30) == "claimed"


async def test_a_claim_excludes_others_until_released_or_its_lease_lapses(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store = TableIdempotencyStore(await make_table(), ttl_seconds=600, now=clock.now)

    assert await store.claim("charge#e1", lease=30) == "claimed"
    assert await store.claim("charge#e1", lease=30) == "in_progress"
    await store.release("charge#e1")
    assert await store.claim("charge#e1", lease=30) == "claimed"  # after a failed attempt
    clock.advance(31)
    assert await store.claim("charge#e1", lease=30) == "claimed"  # its consumer crashed
    await store.complete("charge#e1")
    await store.release("charge#e1")  # a completed record survives a late release
    assert await store.claim("charge#e1", lease=30) == "done"


async def test_table_without_ttl_attribute_is_refused(make_table: MakeTable) -> None:
    with pytest.raises(InvalidRequest, match="ttl_attribute"):
        TableIdempotencyStore(await make_table(ttl_attribute=None))
