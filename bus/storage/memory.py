"""`InMemoryTable`: the storage port in one process, with DynamoDB's semantics.

Not a shortcut: key order, condition results, sparse and projected indexes, TTL, item size
and transaction rules follow DynamoDB, so a test that passes here means something there.
"""

from __future__ import annotations

import bisect
import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bus.storage.conditions import Condition, matches
from bus.storage.errors import (
    CancellationReason,
    ConditionFailed,
    InvalidRequest,
    TransactionCanceled,
)
from bus.storage.items import (
    Item,
    attribute_type,
    check_item,
    copy_item,
    decode_cursor,
    encode_cursor,
    item_size,
    key_of,
    normalize_item,
    normalize_value,
    sortable,
)
from bus.storage.spec import GlobalIndex, TableSpec
from bus.storage.table import (
    MAX_PAGE_SIZE,
    ConditionCheck,
    Delete,
    Page,
    Put,
    TransactOperation,
    Update,
    check_query,
    check_transaction,
    check_transaction_size,
    check_update,
    live_condition,
)

__all__ = ["InMemoryTable"]

_Identity = tuple[Any, ...]
_OrderKey = tuple[Any, ...]


@dataclass
class _Partition:
    order: list[_OrderKey] = field(default_factory=list)
    identities: dict[_OrderKey, _Identity] = field(default_factory=dict)


@dataclass
class _Ordering:
    """Items grouped by a partition key and kept sorted by an order key."""

    key_names: tuple[str, ...]
    partitions: dict[Any, _Partition] = field(default_factory=dict)

    def add(self, partition: Any, order_key: _OrderKey, identity: _Identity) -> None:
        slot = self.partitions.setdefault(partition, _Partition())
        bisect.insort(slot.order, order_key)
        slot.identities[order_key] = identity

    def discard(self, partition: Any, order_key: _OrderKey) -> None:
        slot = self.partitions[partition]
        del slot.order[bisect.bisect_left(slot.order, order_key)]
        del slot.identities[order_key]
        if not slot.order:
            del self.partitions[partition]


class InMemoryTable:
    """A `Table` held in a dict. `now` (epoch seconds) decides which items have expired.

    Expired items are hidden from reads at once and deleted at the next write, as DynamoDB's
    TTL sweeper deletes them some time after they expire: a table whose items carry a TTL
    does not grow without bound.
    """

    def __init__(self, spec: TableSpec, *, now: Callable[[], float] = time.time) -> None:
        self._spec = spec
        self._now = now
        self._items: dict[_Identity, Item] = {}
        self._key_names = spec.key_names
        self._base = _Ordering(spec.key_names[1:])
        self._indexes = {
            index.name: _Ordering(tuple(a.name for a in index.key_attributes[1:]) + spec.key_names)
            for index in spec.indexes
        }
        #: Each index's ordering and key names: an item is in the index if it has them all.
        self._index_keys = [
            (self._indexes[index.name], names, frozenset(names))
            for index in spec.indexes
            for names in [tuple(a.name for a in index.key_attributes)]
        ]
        #: (expiry, identity) of every item stored with a TTL, soonest first; an entry whose
        #: item has since changed or gone is dropped when it comes up.
        self._expiries: list[tuple[float, _Identity]] = []

    @property
    def spec(self) -> TableSpec:
        return self._spec

    def __len__(self) -> int:
        """Items held, expired ones not yet deleted included (DescribeTable's ItemCount)."""
        return len(self._items)

    def scan(self) -> list[Item]:
        """A copy of every item held, as a full Scan reads them: for tests inspecting a table."""
        return [dict(item) for item in self._items.values()]

    async def get(self, key: Mapping[str, Any], *, consistent: bool = False) -> Item | None:
        item = self._items.get(self._identity(key_of(self._spec, key, exact=True)))
        if item is None or not self._is_live(item):
            return None
        return copy_item(item)

    async def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        await self.transact_one(Put(item, condition))

    async def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> Item:
        operation = Update(key, set or {}, tuple(remove), add or {}, condition)
        new_item = await self.transact_one(operation)
        assert new_item is not None
        return copy_item(new_item)

    async def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        await self.transact_one(Delete(key, condition))

    async def transact_one(self, operation: TransactOperation) -> Item | None:
        """Apply one operation outside a transaction, raising `ConditionFailed`."""
        self._purge_expired()
        if isinstance(operation, Put):
            key = key_of(self._spec, operation.item)
        else:
            key = key_of(self._spec, operation.key, exact=True)
        identity = self._identity(key)
        new_item = self._after(operation, key)
        if operation.condition is not None and not matches(
            operation.condition, self._items.get(identity, {})
        ):
            raise ConditionFailed(f"the condition on item {key} is false; nothing was written")
        self._store(identity, new_item, isinstance(operation, ConditionCheck))
        return new_item

    async def transact(self, operations: Sequence[TransactOperation]) -> None:
        self._purge_expired()
        keys = check_transaction(self._spec, operations)
        identities = [self._identity(key) for key in keys]
        # Each Put's item normalised and measured once: for the transaction's size (as
        # `carried_size` counts it) and for its own checks.
        puts = [normalize_item(op.item) if isinstance(op, Put) else None for op in operations]
        sizes = [
            item_size(key if put is None else put) for put, key in zip(puts, keys, strict=True)
        ]
        check_transaction_size(sizes)
        new_items = [
            self._after(op, key, put, size)
            for op, key, put, size in zip(operations, keys, puts, sizes, strict=True)
        ]
        reasons = [
            CancellationReason(None)
            if op.condition is None or matches(op.condition, self._items.get(identity, {}))
            else CancellationReason("ConditionalCheckFailed", "The conditional request failed")
            for op, identity in zip(operations, identities, strict=True)
        ]
        if any(reason.failed for reason in reasons):
            raise TransactionCanceled(reasons)
        for op, identity, new_item in zip(operations, identities, new_items, strict=True):
            self._store(identity, new_item, isinstance(op, ConditionCheck))

    async def query(
        self,
        key_condition: Condition,
        *,
        index: str | None = None,
        filter: Condition | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        descending: bool = False,
        consistent: bool = False,
    ) -> Page:
        global_index, parsed = check_query(self._spec, key_condition, index, limit, consistent)
        ordering = self._base if global_index is None else self._indexes[global_index.name]
        slot = ordering.partitions.get(sortable(parsed.partition_value), _Partition())
        order = list(reversed(slot.order)) if descending else slot.order
        order = order[self._start(order, ordering, cursor, descending) :]
        in_range = (
            self._project(item, global_index)
            for item in (self._items[slot.identities[order_key]] for order_key in order)
            if parsed.sort_condition is None or matches(parsed.sort_condition, item)
        )
        evaluated, more = _read_page(in_range, limit)
        return self._page(evaluated, more, global_index, ordering, filter)

    def _page(
        self,
        evaluated: list[Item],
        more: bool,
        index: GlobalIndex | None,
        ordering: _Ordering,
        filter: Condition | None,
    ) -> Page:
        live = live_condition(self._spec, self._now())
        items = [
            copy_item(item)
            for item in evaluated
            if (live is None or matches(live, item)) and (filter is None or matches(filter, item))
        ]
        next_cursor = None
        if more:
            last = evaluated[-1]
            names = (*self._spec.key_names, *ordering.key_names)
            if index is not None:
                names = (index.partition_key.name, *names)
            next_cursor = encode_cursor({name: last[name] for name in dict.fromkeys(names)})
        return Page(items, next_cursor)

    def _start(
        self, order: list[_OrderKey], ordering: _Ordering, cursor: str | None, descending: bool
    ) -> int:
        if cursor is None:
            return 0
        values = decode_cursor(cursor)
        try:
            after = tuple(sortable(values[name]) for name in ordering.key_names)
        except KeyError as error:
            raise InvalidRequest(f"not a cursor of this query: {cursor!r}") from error
        if descending:
            return len(order) - bisect.bisect_left(list(reversed(order)), after)
        return bisect.bisect_right(order, after)

    def _project(self, item: Item, index: GlobalIndex | None) -> Item:
        names = None if index is None else self._spec.projected_names(index)
        if names is None:
            return item
        return {name: value for name, value in item.items() if name in names}

    def _is_live(self, item: Item) -> bool:
        live = live_condition(self._spec, self._now())
        return live is None or matches(live, item)

    def _identity(self, key: Mapping[str, Any]) -> _Identity:
        return tuple(sortable(key[name]) for name in self._key_names)

    def _after(
        self,
        operation: TransactOperation,
        key: Item,
        put: Item | None = None,
        put_size: int | None = None,
    ) -> Item | None:
        """The item as `operation` would leave it (None: absent), checked for validity; `put`
        is a Put's item already normalised, of `put_size`."""
        if isinstance(operation, Delete):
            return None
        if isinstance(operation, ConditionCheck):
            if operation.condition is None:
                raise InvalidRequest("a ConditionCheck needs a condition")
            return self._items.get(self._identity(key))
        if isinstance(operation, Put):
            item = normalize_item(operation.item) if put is None else put
            check_item(self._spec, item, put_size if put is not None else None)
            return item
        item = _updated(self._spec, self._items.get(self._identity(key)), key, operation)
        check_item(self._spec, item)
        return item

    def _store(self, identity: _Identity, item: Item | None, unchanged: bool) -> None:
        if unchanged:
            return
        old = self._items.pop(identity, None)
        if old is not None:
            self._unindex(identity, old)
        if item is not None:
            self._items[identity] = item
            self._index(identity, item)
            expiry = self._expiry(item)
            if expiry is not None:
                heapq.heappush(self._expiries, (expiry, identity))

    def _expiry(self, item: Item) -> float | None:
        ttl = self._spec.ttl_attribute
        value = None if ttl is None else item.get(ttl)
        return None if value is None else float(value)

    def _purge_expired(self) -> None:
        """Delete the items whose TTL is in the past (DynamoDB's sweeper, done eagerly)."""
        now = self._now()
        while self._expiries and self._expiries[0][0] < now:
            expiry, identity = heapq.heappop(self._expiries)
            item = self._items.get(identity)
            if item is not None and self._expiry(item) == expiry:
                self._store(identity, None, unchanged=False)

    def _index(self, identity: _Identity, item: Item) -> None:
        for ordering, partition, order_key in self._placements(identity, item):
            ordering.add(partition, order_key, identity)

    def _unindex(self, identity: _Identity, item: Item) -> None:
        for ordering, partition, order_key in self._placements(identity, item):
            ordering.discard(partition, order_key)

    def _placements(
        self, identity: _Identity, item: Item
    ) -> list[tuple[_Ordering, Any, _OrderKey]]:
        placements = [(self._base, identity[0], identity[1:])]
        for ordering, names, required in self._index_keys:
            if item.keys() >= required:
                values = [sortable(item[name]) for name in names]
                placements.append((ordering, values[0], (*values[1:], *identity)))
        return placements


def _read_page(candidates: Iterator[Item], limit: int | None) -> tuple[list[Item], bool]:
    """The items one query page reads, as DynamoDB reads them, and whether any is left.

    Reading stops after `limit` items, or once the items read add up to 1 MB: the item that
    reaches 1 MB is read too, so a page minus its last item stays under 1 MB.
    """
    read: list[Item] = []
    size = 0
    for item in candidates:
        if len(read) == limit or size >= MAX_PAGE_SIZE:
            return read, True
        read.append(item)
        size += item_size(item)
    return read, False


def _updated(spec: TableSpec, old: Item | None, key: Item, update: Update) -> Item:
    check_update(spec, update)
    item = dict(old) if old is not None else dict(key)
    for name, value in update.set.items():
        item[name] = normalize_value(value)
    for name in update.remove:
        item.pop(name, None)
    for name, value in update.add.items():
        item[name] = _added(name, item.get(name), normalize_value(value))
    return normalize_item(item)


def _added(name: str, current: Any, value: Any) -> Any:
    kind = attribute_type(value)
    if kind == "N" and (current is None or attribute_type(current) == "N"):
        return normalize_value(Decimal(current or 0) + Decimal(value))
    if kind in ("SS", "NS", "BS") and (current is None or attribute_type(current) == kind):
        return value | (current or set())
    raise InvalidRequest(f"cannot ADD {value!r} to attribute {name!r} holding {current!r}")
