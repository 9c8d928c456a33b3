"""What a domain's table looks like: its name, key attributes, global secondary indexes and
TTL attribute. Plain data read by every `Table` implementation and by provisioning."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bus.storage.errors import InvalidRequest

__all__ = ["GlobalIndex", "KeyAttribute", "KeyType", "Projection", "TableSpec"]


class KeyType(StrEnum):
    """The scalar type of a key attribute, named as DynamoDB names it."""

    STRING = "S"
    NUMBER = "N"
    BINARY = "B"


class Projection(StrEnum):
    """Which attributes a global secondary index copies from the table."""

    ALL = "ALL"
    KEYS_ONLY = "KEYS_ONLY"
    INCLUDE = "INCLUDE"


@dataclass(frozen=True)
class KeyAttribute:
    """A key attribute: its name and scalar type (strings unless said otherwise)."""

    name: str
    type: KeyType = KeyType.STRING


@dataclass(frozen=True)
class GlobalIndex:
    """A global secondary index: another access pattern over the same items.

    Items lacking the index's key attributes are not in the index (a sparse index).
    """

    name: str
    partition_key: KeyAttribute
    #: None: an index with a partition key only.
    sort_key: KeyAttribute | None = None
    #: ALL copies every attribute; KEYS_ONLY the table and index keys; INCLUDE those plus
    #: `non_key_attributes`.
    projection: Projection = Projection.ALL
    #: Only with Projection.INCLUDE: the extra attributes the index copies.
    non_key_attributes: tuple[str, ...] = ()

    @property
    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        if self.sort_key is None:
            return (self.partition_key,)
        return (self.partition_key, self.sort_key)


@dataclass(frozen=True)
class TableSpec:
    """One domain's table. Defaults follow the single-table design: string `PK` and `SK`."""

    name: str
    partition_key: KeyAttribute = KeyAttribute("PK")
    #: None: a table with a partition key only.
    sort_key: KeyAttribute | None = KeyAttribute("SK")
    indexes: tuple[GlobalIndex, ...] = field(default=())
    #: The attribute holding an item's expiry (epoch seconds, a number); None: no TTL.
    ttl_attribute: str | None = None

    def __post_init__(self) -> None:
        names = [index.name for index in self.indexes]
        if len(names) != len(set(names)):
            raise InvalidRequest(f"table {self.name!r}: index names must be unique, got {names}")
        for index in self.indexes:
            if index.non_key_attributes and index.projection is not Projection.INCLUDE:
                raise InvalidRequest(
                    f"index {index.name!r}: non_key_attributes need Projection.INCLUDE"
                )

    @property
    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        if self.sort_key is None:
            return (self.partition_key,)
        return (self.partition_key, self.sort_key)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(attribute.name for attribute in self.key_attributes)

    def index(self, name: str) -> GlobalIndex:
        """The index called `name`; `InvalidRequest` if the table has none by that name."""
        for index in self.indexes:
            if index.name == name:
                return index
        known = [index.name for index in self.indexes]
        raise InvalidRequest(f"table {self.name!r} has no index {name!r} (it has {known})")

    def projected_names(self, index: GlobalIndex) -> frozenset[str] | None:
        """The attributes `index` holds, or None when it holds them all."""
        if index.projection is Projection.ALL:
            return None
        names = {*self.key_names, *(attribute.name for attribute in index.key_attributes)}
        if index.projection is Projection.INCLUDE:
            names.update(index.non_key_attributes)
        return frozenset(names)
