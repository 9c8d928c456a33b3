"""`UnitOfWork`: stage item writes and outgoing events, commit them in one transaction.

The state change and the events it causes are written together or not at all (the
transactional outbox); `OutboxRelay` publishes the events afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from bus.envelope import check_size
from bus.limits import SNS
from bus.storage.conditions import Attr, Condition, Key
from bus.storage.errors import StorageError, TransactionCanceled, TransactionTooLarge
from bus.storage.outbox import (
    EVENT_PREFIX,
    HEAD_SORT_KEY,
    OUTBOX_SHARD_ATTRIBUTE,
    OUTBOX_TASK_DOMAIN_ATTRIBUTE,
    check_outbox_table,
    event_sort_key,
    outbox_partition,
    shard_of,
)
from bus.storage.table import (
    MAX_TRANSACTION_OPERATIONS,
    ConditionCheck,
    Delete,
    Put,
    Table,
    TransactOperation,
    Update,
)

__all__ = ["OutgoingEvent", "UnitOfWork"]


@dataclass(frozen=True)
class OutgoingEvent:
    """An encoded envelope waiting to leave, in order among those of `ordering_key`: an event
    to publish, or a task to send to the task queue of `task_domain`."""

    body: bytes
    ordering_key: str
    event_id: str
    task_domain: str | None = None


class UnitOfWork:
    """`async with UnitOfWork(table) as uow:` stage writes and events; a clean exit commits
    them as ONE `table.transact()`, an exception discards them.

    Each ordering key's events get consecutive sequence numbers from a head item guarded by
    a condition, so per-key order is commit order even across processes; losing that race
    to a concurrent commit re-reads the head and retries (up to `max_attempts`).
    All staged writes, plus one head per ordering key and one item per event, must fit in
    one transaction: 100 operations and 4 MB of items (`TransactionTooLarge` otherwise).

    A head expires `head_ttl` seconds after its key's last commit (when the table has a TTL
    attribute), so keys that are never used again leave nothing behind; a commit that finds
    no head numbers on from the key's last pending event, if any.
    """

    def __init__(
        self,
        table: Table,
        *,
        now: Callable[[], float] = time.time,
        max_attempts: int = 5,
        head_ttl: float = 24 * 3600.0,
    ) -> None:
        self._table = table
        self._now = now
        self._max_attempts = max_attempts
        self._head_ttl = head_ttl
        self._operations: list[TransactOperation] = []
        self._events: list[OutgoingEvent] = []
        self._finished = False

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            self._finished = True

    @property
    def events(self) -> tuple[OutgoingEvent, ...]:
        return tuple(self._events)

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._stage(Put(item, condition))

    def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> None:
        self._stage(Update(key, set or {}, tuple(remove), add or {}, condition))

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._stage(Delete(key, condition))

    def check(self, key: Mapping[str, Any], condition: Condition) -> None:
        """Commit only if `condition` holds for the item with this key."""
        self._stage(ConditionCheck(key, condition))

    def publish(self, body: bytes, *, ordering_key: str, event_id: str) -> None:
        """Stage an encoded event; it is written to the outbox with the other writes.

        `MessageTooLarge` if the body alone is over SNS's 256 KiB, the smallest publish path:
        such an event could never leave the outbox.
        """
        self._check_open()
        check_outbox_table(self._table.spec)
        check_size(body, SNS, f"outbox event {event_id}")
        self._events.append(OutgoingEvent(bytes(body), ordering_key, event_id))

    def send(self, body: bytes, *, ordering_key: str, event_id: str, task_domain: str) -> None:
        """Stage an encoded task for `task_domain`'s task queue; it is written to the outbox
        with the other writes and sent by the relay."""
        self._check_open()
        check_outbox_table(self._table.spec)
        self._events.append(OutgoingEvent(bytes(body), ordering_key, event_id, task_domain))

    async def commit(self) -> None:
        """Write everything staged in one transaction. `TransactionCanceled.reasons[i]` is
        about the i-th staged write."""
        self._check_open()
        self._finished = True
        if not self._operations and not self._events:
            return
        for attempt in range(1, self._max_attempts + 1):
            outbox = await self._outbox_operations()
            total = len(self._operations) + len(outbox)
            if total > MAX_TRANSACTION_OPERATIONS:
                raise self._too_large(
                    outbox,
                    f"{total} operations, over the {MAX_TRANSACTION_OPERATIONS} a transaction "
                    "holds; split the work",
                )
            try:
                await self._table.transact([*self._operations, *outbox])
                return
            except TransactionTooLarge as too_large:
                raise self._too_large(outbox, str(too_large)) from None
            except TransactionCanceled as canceled:
                staged = len(self._operations)
                if attempt < self._max_attempts and self._lost_race(canceled, staged):
                    continue
                raise TransactionCanceled(canceled.reasons[:staged] or canceled.reasons) from None

    def _stage(self, operation: TransactOperation) -> None:
        self._check_open()
        self._operations.append(operation)

    def _check_open(self) -> None:
        if self._finished:
            raise StorageError("this unit of work has ended; start a new one")

    async def _outbox_operations(self) -> list[TransactOperation]:
        by_key: dict[str, list[OutgoingEvent]] = {}
        for event in self._events:
            by_key.setdefault(event.ordering_key, []).append(event)
        operations: list[TransactOperation] = []
        committed_at = self._now()
        for ordering_key, events in by_key.items():
            operations.extend(await self._outbox_writes(ordering_key, events, committed_at))
        return operations

    def _too_large(self, outbox: list[TransactOperation], why: str) -> TransactionTooLarge:
        return TransactionTooLarge(
            f"this unit of work does not fit in one transaction ({len(self._operations)} "
            f"writes, {len(self._events)} events in {len(outbox)} outbox items): {why}"
        )

    async def _outbox_writes(
        self, ordering_key: str, events: list[OutgoingEvent], committed_at: float
    ) -> list[TransactOperation]:
        pk, sk = self._table.spec.key_names
        partition = outbox_partition(ordering_key)
        head_key = {pk: partition, sk: HEAD_SORT_KEY}
        head = await self._table.get(head_key, consistent=True)
        first = await self._next_pending_seq(partition) if head is None else int(head["next_seq"])
        next_seq = first + len(events)
        ttl = self._table.spec.ttl_attribute
        expiry = {} if ttl is None else {ttl: int(committed_at + self._head_ttl)}
        head_write: TransactOperation
        if head is None:
            absent = Attr(pk).not_exists()
            if ttl is not None:  # expired, not yet deleted: conditions still see it
                absent = absent | Attr(ttl).lt(committed_at)
            head_write = Put({**head_key, "next_seq": next_seq, **expiry}, condition=absent)
        else:
            head_write = Update(
                head_key, set={"next_seq": next_seq, **expiry}, condition=Attr("next_seq").eq(first)
            )
        event_writes: list[TransactOperation] = [
            Put(
                {
                    pk: partition,
                    sk: event_sort_key(first + offset),
                    "event_id": event.event_id,
                    "ordering_key": ordering_key,
                    "seq": first + offset,
                    "body": event.body,
                    "committed_at": committed_at,
                    OUTBOX_SHARD_ATTRIBUTE: shard_of(ordering_key),
                    **(
                        {}
                        if event.task_domain is None
                        else {OUTBOX_TASK_DOMAIN_ATTRIBUTE: event.task_domain}
                    ),
                }
            )
            for offset, event in enumerate(events)
        ]
        return [head_write, *event_writes]

    async def _next_pending_seq(self, partition: str) -> int:
        """The sequence number after the key's last pending event (0 when none is): its head
        expired while events were still pending, and order must hold."""
        pk, sk = self._table.spec.key_names
        page = await self._table.query(
            Key(pk).eq(partition) & Key(sk).begins_with(EVENT_PREFIX),
            limit=1,
            descending=True,
            consistent=True,
        )
        return int(page.items[0]["seq"]) + 1 if page.items else 0

    @staticmethod
    def _lost_race(canceled: TransactionCanceled, staged: int) -> bool:
        """Whether only the outbox heads (or a conflicting transaction) stopped the commit."""
        return all(
            index >= staged or canceled.reasons[index].code == "TransactionConflict"
            for index in canceled.failed_indexes
        )
