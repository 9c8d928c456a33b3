"""`TableIdempotencyStore`: which (handler, event id) pairs have had their effect, kept in the
domain's own table and forgotten by TTL after `ttl_seconds`; claimed and recorded one at a
time, or a whole batch's together."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from bus.errors import ClaimLost
from bus.storage.conditions import Attr, Condition
from bus.storage.errors import ConditionFailed, InvalidRequest, TransactionCanceled
from bus.storage.spec import KeyType
from bus.storage.table import MAX_TRANSACTION_OPERATIONS, Delete, Put, Table

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
        try:
            await self._apply(self._claim_write(key, token, lease, self._now()))
            return "claimed"
        except ConditionFailed:
            return await self._taken(key)

    async def claim_many(self, claims: Sequence[tuple[str, str]], lease: float) -> dict[str, Claim]:
        """`claim` for each `(key, token)` (a key named twice is claimed once, with its first
        token), in one transaction where none is taken.

        A transaction is all or none, so the keys it names as taken (done, or another's live
        claim) are looked up and the rest claimed again without them; a transaction canceled
        for any other reason (a concurrent transaction on one of the items) falls back to a
        claim per key. Each key is claimed exactly as `claim` would, whichever way it goes.
        """
        now = self._now()
        tokens: dict[str, str] = {}
        for key, token in claims:
            tokens.setdefault(key, token)
        writes = [(key, self._claim_write(key, token, lease, now)) for key, token in tokens.items()]
        taken = await self._write_each(writes)
        states: dict[str, Claim] = dict.fromkeys(tokens, "claimed")
        for key in taken:
            states[key] = await self._taken(key)
        return states

    async def settle_many(
        self, completed: Sequence[tuple[str, str]], released: Sequence[tuple[str, str]]
    ) -> dict[str, ClaimLost]:
        """`complete` each `(key, token)` of `completed` and `release` each of `released`, in
        one transaction where every claim is still held. Returns the completed keys whose
        claim was lost (their effect is not recorded), each with its `ClaimLost`; a release
        finding another's claim leaves it, as `release` does."""
        writes: list[tuple[str, Put | Delete]] = [
            (key, Put(self._done_item(key, token), _holds(token))) for key, token in completed
        ]
        writes += [
            (key, Delete(self._key(key), self._claimed_by(token))) for key, token in released
        ]
        refused = await self._write_each(writes)
        done = {key for key, _ in completed}
        return {key: self._lost(key) for key in refused if key in done}

    async def complete(self, key: str, *, token: str) -> None:
        """Record the effect as done; `ClaimLost` if another claim replaced this one. A
        record the handler's unit of work already completed under this token is kept."""
        try:
            await self._table.put(self._done_item(key, token), condition=_holds(token))
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

    def _claim_write(self, key: str, token: str, lease: float, now: float) -> Put:
        """The claim of `key`, written unless it is done or another claim's lease still runs."""
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
        return Put(item, free)

    async def _taken(self, key: str) -> Claim:
        """Why a claim of `key` was refused: its effect is done, or another consumer holds it."""
        current = await self._table.get(self._key(key), consistent=True)
        if current is not None and current.get("status") == "DONE":
            return "done"
        return "in_progress"  # held by another consumer, or gone a moment ago: retry later

    async def _write_each(self, writes: Sequence[tuple[str, Put | Delete]]) -> set[str]:
        """Apply each key's conditional write; the keys whose condition was false.

        Up to `MAX_TRANSACTION_OPERATIONS` go in one transaction. When one is canceled, the
        writes it names as failing their condition are refused and the others tried again
        together; a cancellation naming none (a conflict with a concurrent transaction)
        sends that group's writes one at a time.
        """
        refused: set[str] = set()
        for start in range(0, len(writes), MAX_TRANSACTION_OPERATIONS):
            group = list(writes[start : start + MAX_TRANSACTION_OPERATIONS])
            while len(group) > 1:
                try:
                    await self._table.transact([write for _, write in group])
                    group = []
                except TransactionCanceled as canceled:
                    failed = {
                        index
                        for index, reason in enumerate(canceled.reasons)
                        if reason.code == "ConditionalCheckFailed"
                    }
                    if not failed or len(canceled.reasons) != len(group):
                        break
                    refused.update(group[index][0] for index in failed)
                    group = [write for index, write in enumerate(group) if index not in failed]
            for key, write in group:
                try:
                    await self._apply(write)
                except ConditionFailed:
                    refused.add(key)
        return refused

    async def _apply(self, write: Put | Delete) -> None:
        if isinstance(write, Put):
            await self._table.put(write.item, condition=write.condition)
        else:
            await self._table.delete(write.key, condition=write.condition)

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


def _holds(token: str) -> Condition:
    """The record is this claim's: still claimed, or already completed by its unit of work."""
    return Attr("claim_token").eq(token)


def idempotency_store_for(domain: Domain, table: Table, clock: Clock) -> TableIdempotencyStore:
    """Where `domain`'s handlers record what they have done: its own table, the records
    expiring after the domain's `idempotency_ttl` on `clock`'s time."""
    return TableIdempotencyStore(table, ttl_seconds=domain.settings.idempotency_ttl, now=clock.now)
