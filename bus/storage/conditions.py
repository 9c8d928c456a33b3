"""The condition language: key conditions for queries, conditions for writes, filters.

`Key` and `Attr` mirror `boto3.dynamodb.conditions` name for name (`Key("SK").begins_with`,
`Attr("n").gt(3) & ~Attr("x").exists()`), so DynamoDB users already know it, without importing
boto3 into the kernel. Conditions are plain frozen data: `matches` evaluates them in memory
with DynamoDB's rules; the DynamoDB adapter translates them to expressions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bus.storage.errors import InvalidRequest
from bus.storage.items import attribute_type, normalize_value, same_value, sortable

__all__ = [
    "And",
    "Attr",
    "AttributeType",
    "BeginsWith",
    "Between",
    "Comparison",
    "Condition",
    "Contains",
    "Exists",
    "In",
    "Key",
    "Not",
    "NotExists",
    "Or",
    "matches",
]

_ORDERED = ("S", "N", "B")


class Condition:
    """A boolean expression over one item; combine with `&`, `|` and `~`."""

    def __and__(self, other: Condition) -> Condition:
        return And(self, other)

    def __or__(self, other: Condition) -> Condition:
        return Or(self, other)

    def __invert__(self) -> Condition:
        return Not(self)


@dataclass(frozen=True)
class Comparison(Condition):
    """`path <op> value`, op one of = <> < <= > >=."""

    path: str
    operator: str
    value: Any


@dataclass(frozen=True)
class Between(Condition):
    path: str
    low: Any
    high: Any


@dataclass(frozen=True)
class BeginsWith(Condition):
    path: str
    prefix: Any


@dataclass(frozen=True)
class In(Condition):
    path: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Contains(Condition):
    path: str
    value: Any


@dataclass(frozen=True)
class Exists(Condition):
    path: str


@dataclass(frozen=True)
class NotExists(Condition):
    path: str


@dataclass(frozen=True)
class AttributeType(Condition):
    path: str
    type: str


@dataclass(frozen=True)
class And(Condition):
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Or(Condition):
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Not(Condition):
    condition: Condition


class Key:
    """A key attribute in a query's key condition: `Key("PK").eq(x) & Key("SK").lt(y)`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def eq(self, value: Any) -> Condition:
        return Comparison(self.name, "=", normalize_value(value))

    def lt(self, value: Any) -> Condition:
        return Comparison(self.name, "<", normalize_value(value))

    def lte(self, value: Any) -> Condition:
        return Comparison(self.name, "<=", normalize_value(value))

    def gt(self, value: Any) -> Condition:
        return Comparison(self.name, ">", normalize_value(value))

    def gte(self, value: Any) -> Condition:
        return Comparison(self.name, ">=", normalize_value(value))

    def between(self, low: Any, high: Any) -> Condition:
        """Inclusive at both ends, as in DynamoDB."""
        return Between(self.name, normalize_value(low), normalize_value(high))

    def begins_with(self, prefix: str | bytes) -> Condition:
        return BeginsWith(self.name, normalize_value(prefix))


class Attr(Key):
    """Any attribute, by path (`"a.b[0]"` reaches into maps and lists), in a write's
    condition or a query's filter."""

    def ne(self, value: Any) -> Condition:
        return Comparison(self.name, "<>", normalize_value(value))

    def is_in(self, values: Iterable[Any]) -> Condition:
        return In(self.name, tuple(normalize_value(value) for value in values))

    def contains(self, value: Any) -> Condition:
        return Contains(self.name, normalize_value(value))

    def exists(self) -> Condition:
        return Exists(self.name)

    def not_exists(self) -> Condition:
        return NotExists(self.name)

    def attribute_type(self, type_: str) -> Condition:
        return AttributeType(self.name, type_)


_MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """`"a.b[2]"` -> `["a", "b", 2]`, boto3's reading of a dotted path."""
    segments: list[str | int] = []
    position = 0
    for match in _SEGMENT.finditer(path):
        name, index = match.groups()
        segments.append(name if name is not None else int(index))
        position = match.end()
        if position < len(path) and path[position] == ".":
            position += 1
    if not segments or not isinstance(segments[0], str):
        raise InvalidRequest(f"not an attribute path: {path!r}")
    return segments


def resolve(item: dict[str, Any], path: str) -> Any:
    """The value at `path` in `item`, or `_MISSING`."""
    value: Any = item
    for segment in parse_path(path):
        if isinstance(segment, int):
            if not isinstance(value, list) or segment >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or segment not in value:
            return _MISSING
        value = value[segment]
    return value


def matches(condition: Condition, item: dict[str, Any]) -> bool:
    """Whether `condition` holds for `item` (a normalised item; `{}` for an absent one),
    with DynamoDB's rules: comparing a missing attribute, or values of different types,
    is false, except `<>` which is then true."""
    match condition:
        case And(left, right):
            return matches(left, item) and matches(right, item)
        case Or(left, right):
            return matches(left, item) or matches(right, item)
        case Not(inner):
            return not matches(inner, item)
        case Exists(path):
            return resolve(item, path) is not _MISSING
        case NotExists(path):
            return resolve(item, path) is _MISSING
    return _matches_value(condition, resolve(item, _path_of(condition)))


def _path_of(condition: Condition) -> str:
    path = getattr(condition, "path", None)
    if not isinstance(path, str):
        raise InvalidRequest(f"not a condition: {condition!r}")
    return path


def _matches_value(condition: Condition, value: Any) -> bool:
    match condition:
        case Comparison(_, "=", expected):
            return value is not _MISSING and same_value(value, expected)
        case Comparison(_, "<>", expected):
            return value is _MISSING or not same_value(value, expected)
        case Comparison(_, operator, expected):
            return _compare(value, operator, expected)
        case Between(_, low, high):
            return _compare(value, ">=", low) and _compare(value, "<=", high)
        case BeginsWith(_, prefix):
            return (
                isinstance(value, str | bytes)
                and attribute_type(value) == attribute_type(prefix)
                and value.startswith(prefix)
            )
        case In(_, values):
            return value is not _MISSING and any(same_value(value, v) for v in values)
        case Contains(_, expected):
            return _contains(value, expected)
        case AttributeType(_, type_):
            return value is not _MISSING and attribute_type(value) == type_
    raise InvalidRequest(f"not a condition: {condition!r}")


def _compare(value: Any, operator: str, expected: Any) -> bool:
    if value is _MISSING:
        return False
    kind = attribute_type(value)
    if kind not in _ORDERED or kind != attribute_type(expected):
        return False
    left, right = sortable(value), sortable(expected)
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    if operator == ">=":
        return bool(left >= right)
    raise InvalidRequest(f"unknown comparison operator {operator!r}")


def _contains(value: Any, expected: Any) -> bool:
    if isinstance(value, str):
        return isinstance(expected, str) and expected in value
    if isinstance(value, set):
        return attribute_type(value)[:-1] == attribute_type(expected) and expected in value
    if isinstance(value, list):
        return any(same_value(element, expected) for element in value)
    return False
