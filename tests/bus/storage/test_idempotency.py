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


async def test_claiming_many_claims_each_key_as_claiming_it_alone_would(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await make_table()
    store = TableIdempotencyStore(table, ttl_seconds=600, now=clock.now)
    assert await store.claim("mail#done", lease=30, token="earlier") == "claimed"
    await store.complete("mail#done", token="earlier")
    assert await store.claim("mail#held", lease=30, token="other") == "claimed"
    assert await store.claim("mail#lapsed", lease=5, token="crashed") == "claimed"
    clock.advance(10)

    states = await store.claim_many(
        [
            ("mail#new", "t1"),
            ("mail#done", "t2"),
            ("mail#held", "t3"),
            ("mail#lapsed", "t4"),
            ("mail#new", "t5"),  # a second copy in the batch: claimed once, with t1
        ],
        lease=30,
    )

    assert states == {
        "mail#new": "claimed",
        "mail#done": "done",
        "mail#held": "in_progress",
        "mail#lapsed": "claimed",
    }
    assert await store.claim("mail#new", lease=30, token="late") == "in_progress"
    lost = await store.settle_many([("mail#new", "t1"), ("mail#lapsed", "t4")], released=[])
    assert lost == {}
    assert await store.claim("mail#lapsed", lease=30, token="late") == "done"
    with pytest.raises(ClaimLost):
        await store.complete("mail#lapsed", token="crashed")


async def test_settling_many_records_held_claims_and_names_the_lost_ones(
    make_table: MakeTable, clock: ManualClock
) -> None:
    store = TableIdempotencyStore(await make_table(), ttl_seconds=600, now=clock.now)
    claims = [(f"mail#e{n}", f"t{n}") for n in range(4)]
    assert set((await store.claim_many(claims, lease=30)).values()) == {"claimed"}
    clock.advance(31)  # e1's handler outlived its lease; another consumer took it over
    assert await store.claim("mail#e1", lease=30, token="second") == "claimed"
    assert await store.claim("mail#e3", lease=30, token="third") == "claimed"

    lost = await store.settle_many(
        completed=[("mail#e0", "t0"), ("mail#e1", "t1")],
        released=[("mail#e2", "t2"), ("mail#e3", "t3")],
    )

    assert list(lost) == ["mail#e1"]
    assert isinstance(lost["mail#e1"], ClaimLost)
    assert await store.claim("mail#e0", lease=30, token="x") == "done"
    assert await store.claim("mail#e2", lease=30, token="x") == "claimed"  # released
    assert await store.claim("mail#e3", lease=30, token="x") == "in_progress"  # not another's
    await store.complete("mail#e1", token="second")
