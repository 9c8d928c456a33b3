"""The transactional outbox: where a unit of work leaves outgoing events in the domain's own
table, and `OutboxRelay`, which publishes them in per-key commit order and then deletes them.

Layout (string PK/SK table):
    PK="OUTBOX#<ordering_key>"  SK="HEAD"                     next_seq: the next sequence number
    PK="OUTBOX#<ordering_key>"  SK="EVENT#<seq, 20 digits>"   event_id, ordering_key, seq, body,
                                                              committed_at, outbox_shard,
                                                              task_domain (tasks only)
Every pending event also carries `outbox_shard` = "PENDING#<0..7>", the key of the sparse
KEYS_ONLY index `outbox`, so a relay finds the keys with pending events without a scan; the
events themselves are then read from the base table with a consistent query, in order.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from bus.envelope import MAX_INHERITED_ID_LENGTH, Envelope
from bus.errors import ConfigurationError, PermanentError
from bus.storage.conditions import Key
from bus.storage.errors import InvalidRequest
from bus.storage.spec import GlobalIndex, KeyAttribute, KeyType, Projection, TableSpec
from bus.storage.table import Delete, Table

if TYPE_CHECKING:
    from bus.dispatch import Publisher

__all__ = [
    "OUTBOX_INDEX",
    "OUTBOX_SHARDS",
    "OutboxRelay",
    "Park",
    "addressed_task",
    "outbox_index",
    "outbox_sender",
]

OUTBOX_INDEX = "outbox"
OUTBOX_SHARD_ATTRIBUTE = "outbox_shard"
#: On an item that holds a task rather than an event: the domain whose task queue it goes to.
OUTBOX_TASK_DOMAIN_ATTRIBUTE = "task_domain"
#: Pending events are spread over this many index partitions so no one partition is hot.
OUTBOX_SHARDS = 8
HEAD_SORT_KEY = "HEAD"
EVENT_PREFIX = "EVENT#"
_PARTITION_PREFIX = "OUTBOX#"

#: Publishes a batch of encoded envelopes, in order; raising leaves them all pending.
Publish = Callable[[list[bytes]], Awaitable[None]]
#: Publishes a batch of outbox items themselves (keys, `event_id`, `seq`, `body`,
#: `committed_at`), in order, for a caller that must name the item it could not publish.
PublishItems = Callable[[list[dict[str, Any]]], Awaitable[None]]
#: Takes an outbox item that can never be published, and why, somewhere it can be looked at
#: (a dead-letter queue); the relay deletes the item once this returns.
Park = Callable[[dict[str, Any], str], Awaitable[None]]
_log = logging.getLogger("bus.storage.outbox")


def outbox_index() -> GlobalIndex:
    """The index a table needs to hold an outbox: add it to `TableSpec.indexes`."""
    return GlobalIndex(
        OUTBOX_INDEX, KeyAttribute(OUTBOX_SHARD_ATTRIBUTE), projection=Projection.KEYS_ONLY
    )


def check_outbox_table(spec: TableSpec) -> None:
    """`InvalidRequest` unless `spec` can hold an outbox: string keys named `PK` and `SK`
    (the layout every reader of an outbox item, a table's stream relay among them, expects)
    and `outbox_index()`."""
    strings = spec.sort_key is not None and all(
        attribute.type is KeyType.STRING for attribute in spec.key_attributes
    )
    named = spec.key_names == ("PK", "SK")
    if not strings or not named or outbox_index() not in spec.indexes:
        raise InvalidRequest(
            f"table {spec.name!r} cannot hold an outbox: it needs string partition and sort "
            "keys named PK and SK, and `outbox_index()` in TableSpec.indexes"
        )


def outbox_partition(ordering_key: str) -> str:
    return f"{_PARTITION_PREFIX}{ordering_key}"


def event_sort_key(seq: int) -> str:
    return f"{EVENT_PREFIX}{seq:020d}"


def shard_of(ordering_key: str) -> str:
    return f"PENDING#{zlib.crc32(ordering_key.encode('utf-8')) % OUTBOX_SHARDS}"


class OutboxRelay:
    """Publishes what the outbox holds: per ordering key, in commit order, then deletes it.

    At least once: a crash after `publish` returns and before the delete publishes those
    events again on the next pass (consumers deduplicate by event id). Nothing committed is
    ever lost: a new relay on the same table picks up whatever is pending.

    With `park`, an item whose publishing raises a `PermanentError` (unreadable, too large)
    is handed to `park` and deleted, so the events after it on its key go on; without, it
    stays pending and holds its key back.
    """

    def __init__(
        self,
        table: Table,
        publish: Publish | None = None,
        *,
        publish_items: PublishItems | None = None,
        batch_size: int = 100,
        now: Callable[[], float] = time.time,
        park: Park | None = None,
    ) -> None:
        """`publish` gets each batch's bodies, `publish_items` its items: give one of them.
        `now` is the clock `relay_once(older_than=...)` measures an event's age by: the one
        the unit of work stamps `committed_at` with."""
        check_outbox_table(table.spec)
        if not 1 <= batch_size <= 100:
            raise InvalidRequest(f"batch_size is 1 to 100 (one transaction), got {batch_size}")
        if publish is not None and publish_items is None:
            publish_items = _bodies_to(publish)
        elif publish is not None or publish_items is None:
            raise ConfigurationError(
                "OutboxRelay takes one of publish (bodies) or publish_items (items)"
            )
        self._table = table
        self._publish_items = publish_items
        self._batch_size = batch_size
        self._now = now
        self._park = park
        self._pk = table.spec.partition_key.name
        sort_key = table.spec.sort_key
        assert sort_key is not None
        self._sk = sort_key.name
        #: Serialises this relay's passes: two at once (a loop woken by a commit and a caller
        #: settling) would both publish, or both park, the same item.
        self._passing: Any = None
        #: How many ordering keys held pending events when the latest pass looked (0: the
        #: outbox was empty then).
        self.keys_found = 0

    async def relay_once(
        self, older_than: float | None = None, *, should_stop: Callable[[], bool] | None = None
    ) -> int:
        """Publish every pending event once; return how many were published.

        With `older_than` (seconds), only events committed at least that long ago: each key's
        events in order up to its first younger one, which stays pending with all after it,
        so order holds and fresh events are left to whoever relays them as they commit (a
        table's stream). An item without `committed_at` counts as old. `should_stop()` is
        asked before each key and between batches; once it is true the pass ends, and what
        it did not reach stays pending, in order.
        """
        if self._passing is None:
            import anyio  # only where a relay passes: not on a function's import path

            self._passing = anyio.Lock()
        async with self._passing:
            return await self._pass(older_than, should_stop)

    async def _pass(self, older_than: float | None, should_stop: Callable[[], bool] | None) -> int:
        cutoff = None if older_than is None else self._now() - older_than
        published = 0
        keys = await self._pending_keys(should_stop)
        self.keys_found = len(keys)
        if older_than is not None:
            # A sweep that runs out of time must not always spend it on the same keys.
            random.shuffle(keys)
        for ordering_key in keys:
            if should_stop is not None and should_stop():
                break
            try:
                published += await self._relay_key(ordering_key, cutoff, should_stop)
            except Exception:  # one stuck key must not hold back the others
                _log.exception("outbox: publishing events of %s failed; will retry", ordering_key)
        return published

    async def pending(self) -> bool:
        """Whether any committed event is still waiting to be published."""
        return bool(await self._pending_keys())

    async def run(self, poll_interval: float = 0.1) -> None:
        """Relay until cancelled (run it in a task group); a failed pass is logged and retried
        after `poll_interval` seconds, as is an empty one."""
        import anyio  # a relay's loop only: a Lambda relays from the table's stream instead

        while True:
            try:
                published = await self.relay_once()
            except Exception:
                _log.exception("outbox relay pass failed; retrying in %ss", poll_interval)
                published = 0
            if published == 0:
                await anyio.sleep(poll_interval)

    async def _pending_keys(self, should_stop: Callable[[], bool] | None = None) -> list[str]:
        keys: dict[str, None] = {}
        for shard in range(OUTBOX_SHARDS):
            cursor = None
            while should_stop is None or not should_stop():
                page = await self._table.query(
                    Key(OUTBOX_SHARD_ATTRIBUTE).eq(f"PENDING#{shard}"),
                    index=OUTBOX_INDEX,
                    cursor=cursor,
                )
                for item in page.items:
                    keys[item[self._pk][len(_PARTITION_PREFIX) :]] = None
                cursor = page.cursor
                if cursor is None:
                    break
        return list(keys)

    async def _relay_key(
        self, ordering_key: str, cutoff: float | None, should_stop: Callable[[], bool] | None
    ) -> int:
        published = 0
        condition = Key(self._pk).eq(outbox_partition(ordering_key)) & Key(self._sk).begins_with(
            EVENT_PREFIX
        )
        while True:
            page = await self._table.query(condition, limit=self._batch_size, consistent=True)
            items = page.items if cutoff is None else _committed_by(page.items, cutoff)
            if items:
                published += await self._hand_over(items)
            if page.cursor is None or len(items) < len(page.items):
                return published  # all published, or the rest is younger than the cutoff
            if should_stop is not None and should_stop():
                return published

    async def _hand_over(self, items: list[dict[str, Any]]) -> int:
        """Publish `items` and delete them; how many were published (the rest parked)."""
        try:
            await self._publish_items(items)
        except PermanentError:
            if self._park is None:
                raise
            return await self._one_by_one(items, self._park)
        await self._table.transact([Delete(self._key(item)) for item in items])
        return len(items)

    async def _one_by_one(self, items: list[dict[str, Any]], park: Park) -> int:
        """Find, in order, the items of a refused batch that can never be published, and
        park them; a transient failure stops here, leaving this item and the rest pending."""
        published = 0
        for item in items:
            try:
                await self._publish_items([item])
                published += 1
            except PermanentError as error:
                reason = f"{type(error).__name__}: {error}"
                _log.error(
                    "outbox: parking %s %s: %s",
                    item[self._pk],
                    item[self._sk],
                    reason,
                    extra={"event_id": item.get("event_id"), "correlation_id": _correlation(item)},
                )
                await park(item, reason)
            await self._table.delete(self._key(item))
        return published

    def _key(self, item: dict[str, Any]) -> dict[str, Any]:
        return {self._pk: item[self._pk], self._sk: item[self._sk]}


def _correlation(item: dict[str, Any]) -> str | None:
    """The correlation id an unpublishable item's body names, if a log line can carry it."""
    try:
        raw = orjson.loads(bytes(item["body"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    value = raw.get("correlationid") if isinstance(raw, dict) else None
    if isinstance(value, str) and 0 < len(value) <= MAX_INHERITED_ID_LENGTH:
        return value
    return None


class AddressedTaskData(dict[str, Any]):
    """A task's payload read back from an outbox item, still naming the domain whose task
    queue it goes to (as `Task.domain` does on the model)."""

    def __init__(self, data: Mapping[str, Any], domain: str) -> None:
        super().__init__(data)
        self.domain = domain


def addressed_task(envelope: Envelope, domain: str) -> Envelope:
    """A decoded task envelope that publishers send to `domain`'s task queue."""
    return envelope._replace(data=AddressedTaskData(envelope.data_dict(), domain))


def outbox_sender(publisher: Publisher) -> PublishItems:
    """An `OutboxRelay`'s `publish_items`: each committed item where it goes, in order:
    events to the topic, tasks (items naming a `task_domain`) to their domain's queue."""

    async def send_items(items: list[dict[str, Any]]) -> None:
        run: list[Envelope] = []
        run_of_tasks = False
        for item in items:
            envelope = Envelope.decode(bytes(item["body"]))
            domain = item.get(OUTBOX_TASK_DOMAIN_ATTRIBUTE)
            is_task = domain is not None
            if is_task:
                envelope = addressed_task(envelope, str(domain))
            if run and is_task != run_of_tasks:
                await _send_run(publisher, run, run_of_tasks)
                run = []
            run.append(envelope)
            run_of_tasks = is_task
        if run:
            await _send_run(publisher, run, run_of_tasks)

    return send_items


async def _send_run(publisher: Publisher, envelopes: list[Envelope], tasks: bool) -> None:
    if tasks:
        await publisher.send(envelopes)
    else:
        await publisher.publish(envelopes)


def _bodies_to(publish: Publish) -> PublishItems:
    async def publish_bodies(items: list[dict[str, Any]]) -> None:
        await publish([bytes(item["body"]) for item in items])

    return publish_bodies


def _committed_by(items: list[dict[str, Any]], cutoff: float) -> list[dict[str, Any]]:
    """The leading items committed at or before `cutoff` (epoch seconds), in order."""
    old: list[dict[str, Any]] = []
    for item in items:
        committed_at = item.get("committed_at")
        if committed_at is not None and float(committed_at) > cutoff:
            break
        old.append(item)
    return old
