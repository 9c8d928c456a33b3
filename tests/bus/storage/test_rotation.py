"""Rotating single-use tokens: spent once for a successor within an active family; a spent
token presented again, or one whose exchange lost the race, is reuse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bus.clock import ManualClock
from bus.storage import Table
from bus.storage.rotation import exchange, token_item, token_key

MakeTable = Callable[..., Awaitable[Table]]
DAY = 24 * 3600
SESSION = {"PK": "USER#u1", "SK": "SESSION#s1"}


def session_of(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"PK": f"USER#{item['user_id']}", "SK": f"SESSION#{item['session_id']}"}


async def family_with_token(make_table: MakeTable, clock: ManualClock) -> Table:
    table = await make_table()
    await table.put({**SESSION, "status": "active"})
    now = int(clock.now())
    await table.put(token_item("t0", expires_at=now + DAY, user_id="u1", session_id="s1"))
    return table


async def test_a_token_is_spent_once_and_its_successor_inherits_the_family(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await family_with_token(make_table, clock)
    now = int(clock.now())

    first = await exchange(table, "t0", now=now, lifetime=DAY, family=session_of)
    assert first.outcome == "rotated" and first.successor is not None
    successor = await table.get(token_key(first.successor), consistent=True)
    assert successor is not None
    assert (successor["user_id"], successor["session_id"], successor["status"]) == (
        "u1",
        "s1",
        "current",
    )
    assert "t0" not in str(await table.get(token_key("t0"), consistent=True))  # only a digest

    again = await exchange(table, "t0", now=now, lifetime=DAY, family=session_of)
    assert again.outcome == "reused" and again.successor is None
    assert again.item is not None and again.item["session_id"] == "s1"
    second = await exchange(table, first.successor, now=now, lifetime=DAY, family=session_of)
    assert second.outcome == "rotated"  # reuse ends nothing by itself: the caller decides


class ExchangedMeanwhile:
    """The table, on which another exchange of the same token runs to its end right after
    this one has read the token's family: between its reads and its transaction."""

    def __init__(self, table: Table, now: int) -> None:
        self._table = table
        self._now = now
        self.other: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    async def get(self, key: Mapping[str, Any], **options: Any) -> Any:
        item = await self._table.get(key, **options)
        if key == SESSION and self.other is None:
            other = await exchange(
                self._table, "t0", now=self._now, lifetime=DAY, family=session_of
            )
            self.other = other.outcome
        return item


async def test_of_two_exchanges_of_one_token_racing_exactly_one_rotates(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await family_with_token(make_table, clock)
    now = int(clock.now())
    racing = ExchangedMeanwhile(table, now)

    late = await exchange(racing, "t0", now=now, lifetime=DAY, family=session_of)

    assert (racing.other, late.outcome, late.successor) == ("rotated", "reused", None)


async def test_expired_unknown_refused_and_ended_families_change_nothing(
    make_table: MakeTable, clock: ManualClock
) -> None:
    table = await family_with_token(make_table, clock)
    now = int(clock.now())

    unknown = await exchange(table, "nope", now=now, lifetime=DAY, family=session_of)
    refused = await exchange(
        table, "t0", now=now, lifetime=DAY, family=session_of, accept=lambda item: False
    )
    expired = await exchange(table, "t0", now=now + DAY, lifetime=DAY, family=session_of)
    assert (unknown.outcome, refused.outcome, expired.outcome) == ("invalid",) * 3
    await table.put({**SESSION, "status": "revoked"})
    ended = await exchange(table, "t0", now=now, lifetime=DAY, family=session_of)
    assert ended.outcome == "family_ended"
    item = await table.get(token_key("t0"), consistent=True)
    assert item is not None and item["status"] == "current"
