"""The storage port: a `Table` is one domain's single-table store, and the operations a
transaction is made of. Implementations: `InMemoryTable` here, `DynamoTable` in adapters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bus.storage.conditions import And, Attr, BeginsWith, Between, Comparison, Condition
from bus.storage.errors import DuplicateTransactionItem, InvalidRequest, TransactionTooLarge
from bus.storage.items import (
    Item,
    attribute_type,
    check_key_value,
    item_size,
    key_of,
    normalize_item,
    normalize_value,
    sortable,
)
from bus.storage.spec import GlobalIndex, KeyAttribute, TableSpec

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_TRANSACTION_OPERATIONS",
    "MAX_TRANSACTION_SIZE",
    "ConditionCheck",
    "Delete",
    "KeyCondition",
    "Page",
    "Put",
    "Table",
    "TransactOperation",
    "Update",
    "carried_size",
    "check_query",
    "check_transaction",
    "check_transaction_size",
    "check_update",
    "live_condition",
    "parse_key_condition",
]

MAX_TRANSACTION_OPERATIONS = 100
#: TransactWriteItems: "The aggregate size of the items in the transaction cannot exceed 4 MB."
MAX_TRANSACTION_SIZE = 4 * 1024 * 1024
#: Query reads at most 1 MB of items per page, measured before any filter.
MAX_PAGE_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Page:
    """One page of a query. `cursor` is None on the last page; otherwise pass it back to get
    the next one (a page may be empty and still carry a cursor). A page ends at `limit` items
    read or once the items read reach 1 MB (`MAX_PAGE_SIZE`), whichever comes first."""

    items: list[Item]
    cursor: str | None = None


@dataclass(frozen=True)
class Put:
    """Write a whole item, replacing any item with the same key."""

    item: Mapping[str, Any]
    condition: Condition | None = None


@dataclass(frozen=True)
class Update:
    """Change some top-level attributes of an item, creating it if absent.

    `set` assigns values, `remove` deletes attributes, `add` adds to a number (absent counts
    as 0) or unions into a set, as DynamoDB's SET, REMOVE and ADD clauses do.
    """

    key: Mapping[str, Any]
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    add: Mapping[str, Any] = field(default_factory=dict)
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    """Delete an item; deleting an absent item succeeds (unless its condition fails)."""

    key: Mapping[str, Any]
    condition: Condition | None = None


@dataclass(frozen=True)
class ConditionCheck:
    """Write nothing, but cancel the transaction unless `condition` holds for the item."""

    key: Mapping[str, Any]
    condition: Condition


TransactOperation = Put | Update | Delete | ConditionCheck


class Table(Protocol):
    """One domain's table. Items are dicts of plain Python values (see `bus.storage.items`).

    Reads never return items whose TTL attribute is in the past. Every error is a
    `bus.storage.errors.StorageError`.
    """

    @property
    def spec(self) -> TableSpec: ...

    async def get(self, key: Mapping[str, Any], *, consistent: bool = False) -> Item | None:
        """The item with this primary key, or None."""
        ...

    async def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        """Write `item` whole; `ConditionFailed` (and nothing written) if `condition` is false."""
        ...

    async def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> Item:
        """Apply an `Update` and return the item as it is afterwards."""
        ...

    async def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        """Delete the item with this key, if any."""
        ...

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
        """Items of one partition in sort-key order.

        `key_condition` is `Key(pk).eq(v)`, optionally `& Key(sk).<eq|lt|lte|gt|gte|between|
        begins_with>(...)`, naming the table's keys or, with `index`, that index's keys.
        `limit` caps the items *evaluated*; `filter` then drops some of them, so a page may
        hold fewer than `limit` items, as in DynamoDB. A page also ends once the items it read
        (index items for an index query, before the filter) reach 1 MB.
        """
        ...

    async def transact(self, operations: Sequence[TransactOperation]) -> None:
        """Apply 1 to 100 operations on distinct items, all or none.

        `TransactionTooLarge` if they hold more than 100 operations or 4 MB of items;
        `TransactionCanceled` (with one reason per operation) if any condition fails.
        """
        ...


@dataclass(frozen=True)
class KeyCondition:
    """A key condition taken apart: the partition value and the optional sort-key part."""

    partition_value: Any
    sort_condition: Condition | None


def parse_key_condition(
    key_condition: Condition, partition_key: KeyAttribute, sort_key: KeyAttribute | None
) -> KeyCondition:
    """Check `key_condition` names these keys with operators DynamoDB allows."""
    parts = _conjuncts(key_condition)
    partition = [p for p in parts if getattr(p, "path", None) == partition_key.name]
    others = [p for p in parts if p not in partition]
    if len(partition) != 1 or not _is_equality(partition[0]) or len(others) > 1:
        raise InvalidRequest(
            f"a key condition is Key({partition_key.name!r}).eq(value), optionally "
            f"& one condition on the sort key; got {key_condition!r}"
        )
    sort_condition = others[0] if others else None
    if sort_condition is not None:
        _check_sort_condition(sort_condition, sort_key)
    equality = partition[0]
    assert isinstance(equality, Comparison)
    return KeyCondition(equality.value, sort_condition)


def _conjuncts(condition: Condition) -> list[Condition]:
    if isinstance(condition, And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _is_equality(condition: Condition) -> bool:
    return isinstance(condition, Comparison) and condition.operator == "="


def _check_sort_condition(condition: Condition, sort_key: KeyAttribute | None) -> None:
    allowed = isinstance(condition, Between | BeginsWith) or (
        isinstance(condition, Comparison) and condition.operator != "<>"
    )
    if sort_key is None or getattr(condition, "path", None) != sort_key.name or not allowed:
        name = None if sort_key is None else sort_key.name
        raise InvalidRequest(
            f"the sort key condition must be on {name!r} with eq, lt, lte, gt, gte, between "
            f"or begins_with; got {condition!r}"
        )


def check_transaction(spec: TableSpec, operations: Sequence[TransactOperation]) -> list[Item]:
    """The key of each operation; `TransactionTooLarge` / `DuplicateTransactionItem` for a
    transaction DynamoDB would refuse outright."""
    if not operations:
        raise InvalidRequest("a transaction needs at least one operation")
    if len(operations) > MAX_TRANSACTION_OPERATIONS:
        raise TransactionTooLarge(
            f"a transaction holds at most {MAX_TRANSACTION_OPERATIONS} operations, got "
            f"{len(operations)}; split it or write less per unit of work"
        )
    keys = [
        key_of(spec, op.item) if isinstance(op, Put) else key_of(spec, op.key, exact=True)
        for op in operations
    ]
    seen: dict[tuple[Any, ...], int] = {}
    for index, key in enumerate(keys):
        identity = tuple(sortable(value) for value in key.values())
        if identity in seen:
            raise DuplicateTransactionItem(
                f"operations {seen[identity]} and {index} both touch item {key}; a "
                "transaction may touch each item once"
            )
        seen[identity] = index
    return keys


def carried_size(spec: TableSpec, operation: TransactOperation) -> int:
    """What an operation adds to a transaction's 4 MB: a Put's item, the key of an Update, a
    Delete or a ConditionCheck (sized as `item_size`).

    DynamoDB does not document how it counts; this is the rule of an emulator whose
    conformance suite checks the limit against DynamoDB (ExtendDB, pull request 21). Counting
    less never refuses what DynamoDB accepts, and DynamoTable maps DynamoDB's own refusal."""
    if isinstance(operation, Put):
        return item_size(normalize_item(operation.item))
    return item_size(key_of(spec, operation.key, exact=True))


def check_transaction_size(sizes: Sequence[int]) -> None:
    """`TransactionTooLarge` unless the items of a transaction, one size per operation, add up
    to at most 4 MB (`MAX_TRANSACTION_SIZE`)."""
    total = sum(sizes)
    if total > MAX_TRANSACTION_SIZE:
        raise TransactionTooLarge(
            f"a transaction's items add up to at most {MAX_TRANSACTION_SIZE} bytes (4 MB), got "
            f"{total} over {len(sizes)} operations (largest {max(sizes)}); split it, or keep "
            "large payloads elsewhere (e.g. S3) and store a reference"
        )


def live_condition(spec: TableSpec, now: float) -> Condition | None:
    """What a readable item satisfies: no TTL attribute, or one not yet in the past."""
    if spec.ttl_attribute is None:
        return None
    ttl = Attr(spec.ttl_attribute)
    return ttl.not_exists() | ttl.gte(now)


def check_query(
    spec: TableSpec,
    key_condition: Condition,
    index: str | None,
    limit: int | None,
    consistent: bool,
) -> tuple[GlobalIndex | None, KeyCondition]:
    """The index a query reads and its key condition, checked as DynamoDB checks them."""
    if limit is not None and limit < 1:
        raise InvalidRequest(f"limit must be at least 1, got {limit}")
    global_index = None if index is None else spec.index(index)
    if global_index is not None and consistent:
        raise InvalidRequest("global secondary indexes support eventually consistent reads only")
    keys = spec.key_attributes if global_index is None else global_index.key_attributes
    parsed = parse_key_condition(key_condition, keys[0], keys[1] if len(keys) > 1 else None)
    check_key_value(keys[0], parsed.partition_value, "key condition")
    if parsed.sort_condition is not None:
        _check_sort_values(parsed.sort_condition, keys[1])
    return global_index, parsed


def _check_sort_values(condition: Condition, sort_key: KeyAttribute) -> None:
    if isinstance(condition, Between):
        values = [condition.low, condition.high]
    elif isinstance(condition, BeginsWith):
        values = [condition.prefix]
    else:
        assert isinstance(condition, Comparison)
        values = [condition.value]
    for value in values:
        check_key_value(sort_key, value, "key condition")
    if isinstance(condition, Between) and sortable(condition.low) > sortable(condition.high):
        raise InvalidRequest("between(low, high) needs low <= high")


def check_update(spec: TableSpec, update: Update) -> None:
    """Reject an update DynamoDB would: one naming an attribute twice, or a key attribute,
    or setting the TTL attribute to something other than a number."""
    names = [*update.set, *update.remove, *update.add]
    if len(names) != len(set(names)):
        raise InvalidRequest(f"an update names each attribute once, got {names}")
    touched_keys = sorted(set(names) & set(spec.key_names))
    if touched_keys:
        raise InvalidRequest(f"key attributes {touched_keys} cannot be updated; delete and put")
    ttl = spec.ttl_attribute
    ttl_value = update.set.get(ttl, 0) if ttl is not None else 0
    if attribute_type(normalize_value(ttl_value)) != "N":
        raise InvalidRequest(f"TTL attribute {ttl!r} holds epoch seconds")
