"""Idempotency records live in the domain's table and expire by TTL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bus.clock import ManualClock
from bus.errors import ClaimLost
from bus.middleware import IdempotencyStore, InMemoryIdempotencyStore
from bus.storage import InvalidRequest, Table, TableIdempotencyStore, TransactionCanceled

MakeTable = Callable[..., Awaitable[Table]]


async def test_a_completed_key_is_done_until_its_ttl_passes(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store: IdempotencyStore = TableIdempotencyStore(
        await make_table(), ttl_seconds=60, now=clock.now
    )

    assert await store.claim("send_welcome#e1", lease=30, token="t1") == "claimed"
    await store.complete("send_welcome#e1", token="t1")

    assert await store.claim("send_welcome#e1", lease=30, token="t1") == "done"
    assert await store.claim("send_welcome#e2", lease=30, token="t1") == "claimed"
    clock.advance(61)
    assert await store.claim("send_welcome#e1", lease=30, token="t1") == "claimed"


async def test_a_claim_excludes_others_until_released_or_its_lease_lapses(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store = TableIdempotencyStore(await make_table(), ttl_seconds=600, now=clock.now)

    assert await store.claim("charge#e1", lease=30, token="t1") == "claimed"
    assert await store.claim("charge#e1", lease=30, token="t1") == "in_progress"
    await store.release("charge#e1", token="t1")
    assert (
        await store.claim("charge#e1", lease=30, token="t1") == "claimed"
    )  # after a failed attempt
    clock.advance(31)
    assert await store.claim("charge#e1", lease=30, token="t1") == "claimed"  # its consumer crashed
    await store.complete("charge#e1", token="t1")
    await store.release("charge#e1", token="t1")  # a completed record survives a late release
    assert await store.claim("charge#e1", lease=30, token="t1") == "done"


async def test_a_claim_taken_over_after_its_lease_cannot_complete_extend_or_release(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    store = TableIdempotencyStore(table, ttl_seconds=600, now=clock.now)
    assert await store.claim("pay#e1", lease=30, token="first") == "claimed"
    clock.advance(31)  # the first handler outlived its lease; the record was delivered again
    assert await store.claim("pay#e1", lease=30, token="second") == "claimed"

    with pytest.raises(ClaimLost):
        await store.complete("pay#e1", token="first")
    with pytest.raises(ClaimLost):
        await store.extend("pay#e1", 30, token="first")
    with pytest.raises(TransactionCanceled):  # the done record in the handler's transaction
        await table.transact([store.done_write("pay#e1", "first")])
    await store.release("pay#e1", token="first")  # leaves the second claim in place
    assert await store.claim("pay#e1", lease=30, token="third") == "in_progress"

    await table.transact([store.done_write("pay#e1", "second")])
    await store.complete("pay#e1", token="second")  # after its unit of work: still its own
    assert await store.claim("pay#e1", lease=30, token="fourth") == "done"


async def test_an_extended_claim_is_not_taken_over(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store = TableIdempotencyStore(await make_table(), ttl_seconds=600, now=clock.now)
    assert await store.claim("pay#e1", lease=30, token="first") == "claimed"
    clock.advance(20)
    await store.extend("pay#e1", 30, token="first")
    clock.advance(20)
    assert await store.claim("pay#e1", lease=30, token="second") == "in_progress"
    await store.complete("pay#e1", token="first")


async def test_the_in_memory_store_holds_claims_by_token_too(clock: ManualClock) -> None:
    store = InMemoryIdempotencyStore(clock, ttl=600)
    assert await store.claim("pay#e1", lease=30, token="first") == "claimed"
    clock.advance(31)
    assert await store.claim("pay#e1", lease=30, token="second") == "claimed"
    with pytest.raises(ClaimLost):
        await store.complete("pay#e1", token="first")
    await store.release("pay#e1", token="first")
    assert await store.claim("pay#e1", lease=30, token="third") == "in_progress"
    await store.extend("pay#e1", 60, token="second")
    clock.advance(40)
    assert await store.claim("pay#e1", lease=30, token="third") == "in_progress"
    await store.complete("pay#e1", token="second")
    assert await store.claim("pay#e1", lease=30, token="third") == "done"


async def test_table_without_ttl_attribute_is_refused(make_table: MakeTable) -> None:
    with pytest.raises(InvalidRequest, match="ttl_attribute"):
        TableIdempotencyStore(await make_table(ttl_attribute=None))
