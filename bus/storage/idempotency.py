"""`TableIdempotencyStore`: which (handler, event id) pairs have had their effect, kept in the
domain's own table and forgotten by TTL after `ttl_seconds`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from bus.errors import ClaimLost
from bus.storage.conditions import Attr, Condition
from bus.storage.errors import ConditionFailed, InvalidRequest
from bus.storage.spec import KeyType
from bus.storage.table import Put, Table

if TYPE_CHECKING:
    from bus.clock import Clock
    from bus.domain import Domain

__all__ = ["TableIdempotencyStore", "idempotency_store_for"]

_PREFIX = "IDEMPOTENCY#"
Claim = Literal["claimed", "done", "in_progress"]


class TableIdempotencyStore:
    """An `IdempotencyStore` on a `Table`: one item per key,
    `PK="IDEMPOTENCY#<key>"`, `SK="IDEMPOTENCY"`, expiring `ttl_seconds` after it is marked.

    A claim stores its `claim_token`; completing, extending and releasing are conditional on
    the item still holding it, so a consumer whose lease ran out and was taken over cannot
    record its effect (`done_write` puts that condition in the handler's own transaction).
    The table needs string keys and a TTL attribute. Keep `ttl_seconds` longer than the
    longest time a duplicate can arrive (SQS retention, at most 14 days).
    """

    def __init__(
        self,
        table: Table,
        *,
        ttl_seconds: float = 15 * 24 * 3600,
        now: Callable[[], float] = time.time,
    ) -> None:
        spec = table.spec
        if spec.ttl_attribute is None or any(
            attribute.type is not KeyType.STRING for attribute in spec.key_attributes
        ):
            raise InvalidRequest(
                f"table {spec.name!r} cannot hold idempotency records: it needs string keys "
                "and a TableSpec.ttl_attribute"
            )
        self._table = table
        self._ttl_attribute = spec.ttl_attribute
        self._ttl_seconds = ttl_seconds
        self._now = now

    async def claim(self, key: str, lease: float, *, token: str) -> Claim:
        """Atomically take the key unless it is done or another claim's lease still runs."""
        now = self._now()
        item = {
            **self._key(key),
            "status": "IN_PROGRESS",
            "claim_token": token,
            "lease_until": now + lease,
            self._ttl_attribute: int(now + self._ttl_seconds),
        }
        pk = self._table.spec.partition_key.name
        free = (
            Attr(pk).not_exists()
            | Attr(self._ttl_attribute).lt(int(now))  # expired: DynamoDB deletes it lazily
            | (Attr("status").eq("IN_PROGRESS") & Attr("lease_until").lt(now))
        )
        try:
            await self._table.put(item, condition=free)
            return "claimed"
        except ConditionFailed:
            current = await self._table.get(self._key(key), consistent=True)
            if current is not None and current.get("status") == "DONE":
                return "done"
            return "in_progress"  # held by another consumer, or gone a moment ago: retry later

    async def complete(self, key: str, *, token: str) -> None:
        """Record the effect as done; `ClaimLost` if another claim replaced this one. A
        record the handler's unit of work already completed under this token is kept."""
        holds = Attr("claim_token").eq(token)
        try:
            await self._table.put(self._done_item(key, token), condition=holds)
        except ConditionFailed:
            raise self._lost(key) from None

    async def release(self, key: str, *, token: str) -> None:
        """Give up a claim (the handler failed); a completed record, or another's claim, stays."""
        with contextlib.suppress(ConditionFailed):
            await self._table.delete(
                self._key(key),
                condition=Attr("status").eq("IN_PROGRESS") & Attr("claim_token").eq(token),
            )

    async def extend(self, key: str, lease: float, *, token: str) -> None:
        """Hold the claim `lease` more seconds from now; `ClaimLost` if it is no longer held."""
        try:
            await self._table.update(
                self._key(key),
                set={"lease_until": self._now() + lease},
                condition=self._claimed_by(token),
            )
        except ConditionFailed:
            raise self._lost(key) from None

    def done_write(self, key: str, token: str) -> Put:
        """The record of a completed effect, to write in the same transaction as the effect:
        it commits only while this delivery's claim (`token`) is still in place."""
        return Put(self._done_item(key, token), self._claimed_by(token))

    def _done_item(self, key: str, token: str) -> dict[str, Any]:
        now = self._now()
        return {
            **self._key(key),
            "status": "DONE",
            "claim_token": token,
            "done_at": now,
            self._ttl_attribute: int(now + self._ttl_seconds),
        }

    @staticmethod
    def _claimed_by(token: str) -> Condition:
        return Attr("status").eq("IN_PROGRESS") & Attr("claim_token").eq(token)

    @staticmethod
    def _lost(key: str) -> ClaimLost:
        return ClaimLost(
            f"{key}: this delivery's claim was taken over after its lease ran out (or its "
            "effect is already recorded); nothing of this attempt was committed"
        )

    def _key(self, key: str) -> dict[str, Any]:
        names = self._table.spec.key_names
        values = (f"{_PREFIX}{key}", "IDEMPOTENCY")
        return dict(zip(names, values, strict=False))


def idempotency_store_for(domain: Domain, table: Table, clock: Clock) -> TableIdempotencyStore:
    """Where `domain`'s handlers record what they have done: its own table, the records
    expiring after the domain's `idempotency_ttl` on `clock`'s time."""
    return TableIdempotencyStore(table, ttl_seconds=domain.settings.idempotency_ttl, now=clock.now)
