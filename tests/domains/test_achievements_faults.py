"""Under the in-memory transport's faults — deliveries doubled, queues read in any order —
the engine ends with the counters and awards of a fault-free run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from anyio.lowlevel import checkpoint

from bus import Event, Key
from bus.clock import Clock
from bus.envelope import Envelope
from bus.memory import Faults, in_memory
from bus.runtime import TableFactory, memory_tables
from bus.storage import InMemoryTable, Item, Table, TableSpec, TransactionCanceled
from bus.storage.conditions import Condition
from bus.storage.table import Page, TransactOperation
from bus.testing import Harness
from domains.achievements.app import domain as achievements
from domains.auth_core.contracts import SignedIn
from domains.social.contracts import UserFollowed, UserUnfollowed

DAY = 24 * 3600.0


def a_history(h: Harness) -> list[Envelope]:
    """Facts in the order they happened, one second (or, for sign-ins, a day) apart: ada
    gains twelve followers and loses two, one of whom comes back (eleven); bob gains nine
    and loses one (eight); carol signs in seven days running, dave misses his fourth day."""
    happened: list[tuple[str, Event]] = []
    for n in range(12):
        happened.append(("social", UserFollowed(follower_id=f"fan{n}", followee_id="ada")))
    happened += [
        ("social", UserUnfollowed(follower_id="fan0", followee_id="ada")),
        ("social", UserUnfollowed(follower_id="fan1", followee_id="ada")),
        ("social", UserFollowed(follower_id="fan1", followee_id="ada")),
    ]
    for n in range(9):
        happened.append(("social", UserFollowed(follower_id=f"fan{n}", followee_id="bob")))
    happened.append(("social", UserUnfollowed(follower_id="fan4", followee_id="bob")))
    envelopes = []
    for source, event in happened:
        h.clock.advance(1.0)  # type: ignore[attr-defined]
        envelopes.append(h.runtime.context(source).publish(event))
    for day in range(1, 9):
        h.clock.advance(DAY)  # type: ignore[attr-defined]
        envelopes.append(
            h.runtime.context("auth_core").publish(SignedIn(user_id="carol", session_id="s"))
        )
        if day != 4:
            envelopes.append(
                h.runtime.context("auth_core").publish(SignedIn(user_id="dave", session_id="s"))
            )
    return envelopes


async def outcome(table: Table) -> list[tuple[str, str, Any]]:
    found = []
    for user in ("ada", "bob", "carol", "dave"):
        page = await table.query(Key("PK").eq(f"USER#{user}"), consistent=True)
        found += [
            (i["PK"], i["SK"], i.get("count"))
            for i in page.items
            if str(i["SK"]).startswith(("COUNTER#", "AWARD#"))
        ]
    return sorted(found)


async def run(
    faults: Faults, seed: int, tables: TableFactory = memory_tables
) -> tuple[list[tuple[str, str, Any]], int]:
    async with Harness(achievements, transport=in_memory(seed, faults), tables=tables) as h:
        table = h.runtime.tables["achievements"]
        history = a_history(h)
        await h.runtime.publisher.publish(history)
        await h.settle()
        assert not h.results("parked"), [o.error for o in h.results("parked")]
        state = await outcome(table)
    return state, len(h.published_of("ACHIEVEMENT_UNLOCKED"))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_doubled_and_reordered_deliveries_end_in_the_fault_free_state(seed: int) -> None:
    expected, unlocked = await run(Faults(), seed)
    state, unlocked_with_faults = await run(Faults(duplicate_rate=0.5, reorder=True), seed)
    assert ("USER#ada", "AWARD#ten_followers", None) in expected
    assert ("USER#ada", "COUNTER#ten_followers", 11) in expected
    assert ("USER#bob", "COUNTER#ten_followers", 8) in expected
    assert ("USER#carol", "AWARD#week_streak", None) in expected
    assert not any(pk == "USER#dave" and sk.startswith("AWARD#") for pk, sk, _ in expected)
    assert unlocked == 2
    assert state == expected
    assert unlocked_with_faults == unlocked


class InterleavingTable(InMemoryTable):
    """The in-memory table yielding before every call, as a call over the network does, so
    two batches of one user's facts interleave between their reads and their commit; it
    counts the transactions a condition canceled."""

    def __init__(self, spec: TableSpec, now: Callable[[], float]) -> None:
        super().__init__(spec, now=now)
        self.canceled = 0

    async def get(self, key: Mapping[str, Any], *, consistent: bool = False) -> Item | None:
        await checkpoint()
        return await super().get(key, consistent=consistent)

    async def query(self, key_condition: Condition, **options: Any) -> Page:
        await checkpoint()
        return await super().query(key_condition, **options)

    async def transact(self, operations: Sequence[TransactOperation]) -> None:
        await checkpoint()
        try:
            await super().transact(operations)
        except TransactionCanceled:
            self.canceled += 1
            raise


async def test_handlers_racing_on_one_user_end_in_the_fault_free_state() -> None:
    tables: dict[str, InterleavingTable] = {}

    def interleaving(spec: TableSpec, clock: Clock) -> Table:
        return tables.setdefault(spec.name, InterleavingTable(spec, clock.now))

    expected, unlocked = await run(Faults(), 1)
    state, unlocked_racing = await run(Faults(reorder=True), 1, interleaving)
    assert tables["tctf-achievements"].canceled > 0  # races happened, and were lost cleanly
    assert state == expected
    assert unlocked_racing == unlocked
