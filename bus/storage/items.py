"""What an item is: plain Python values with DynamoDB's types, sizes and key order.

Every `Table` normalises items through here, so a number reads back the same in memory and
from DynamoDB: an `int` when integral, else a `Decimal`; floats are stored by their shortest
repr; bytes-likes become `bytes`; tuples become lists; sets stay sets.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Set
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import orjson

from bus.storage.errors import InvalidRequest, ItemTooLarge
from bus.storage.spec import KeyAttribute, KeyType, TableSpec

__all__ = [
    "MAX_ITEM_SIZE",
    "Item",
    "attribute_type",
    "check_item",
    "check_key_value",
    "check_size",
    "copy_item",
    "decode_cursor",
    "encode_cursor",
    "item_size",
    "key_of",
    "normalize_item",
    "normalize_value",
    "same_value",
    "sortable",
]

Item = dict[str, Any]
MAX_ITEM_SIZE = 400 * 1024
_MAX_DIGITS = 38
_DECIMAL = Context(prec=_MAX_DIGITS)
#: Integers below this in magnitude have at most 38 digits: stored as they are, sized by
#: their digits, with no Decimal made (most numbers written are such: TTLs, counts).
_PLAIN_INT_LIMIT = 10**_MAX_DIGITS
#: Integral floats below this are exact integers (2**53): stored as the `int` they equal.
_EXACT_FLOAT_LIMIT = 2.0**53


def normalize_item(item: Mapping[str, Any]) -> Item:
    """A fresh copy of `item` in the port's canonical form; `InvalidRequest` if a value has
    no DynamoDB type (an empty set, NaN, a number with more than 38 digits, an object)."""
    if not isinstance(item, Mapping):
        raise InvalidRequest(f"an item is a mapping of attribute names, got {type(item).__name__}")
    return {_name(name): normalize_value(value) for name, value in item.items()}


def normalize_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        return _number(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Mapping):
        return {_name(name): normalize_value(inner) for name, inner in value.items()}
    if isinstance(value, list | tuple):
        return [normalize_value(inner) for inner in value]
    if isinstance(value, Set):
        return _set(value)
    raise InvalidRequest(f"{type(value).__name__} is not a storable value: {value!r}")


def _name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"attribute names are non-empty strings, got {name!r}")
    return name


def _number(value: int | float | Decimal) -> int | Decimal:
    if type(value) is int and -_PLAIN_INT_LIMIT < value < _PLAIN_INT_LIMIT:
        return value
    if type(value) is float and value.is_integer() and abs(value) < _EXACT_FLOAT_LIMIT:
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{value!r} cannot be stored: numbers must be finite")
        value = Decimal(repr(value))
    try:
        number = Decimal(value) if isinstance(value, int) else value
        if not number.is_finite():
            raise InvalidRequest(f"{value!r} cannot be stored: numbers must be finite")
        number = number.normalize(_DECIMAL)
    except InvalidOperation as error:
        raise InvalidRequest(f"{value!r} is not a number DynamoDB can store") from error
    digits = number.as_tuple().digits
    if len(digits) > _MAX_DIGITS or number != value:
        raise InvalidRequest(f"{value!r} has more than {_MAX_DIGITS} significant digits")
    if number == number.to_integral_value():
        return int(number)
    return number


def _set(values: Set[Any]) -> set[Any]:
    if not values:
        raise InvalidRequest("empty sets cannot be stored; remove the attribute instead")
    normalized = {normalize_value(value) for value in values}
    kinds = {attribute_type(value) for value in normalized}
    if len(kinds) != 1 or not kinds <= {"S", "N", "B"}:
        raise InvalidRequest(
            f"a set holds strings, numbers or bytes, all of one type; got {sorted(kinds)}"
        )
    return normalized


def attribute_type(value: Any) -> str:
    """DynamoDB's type descriptor of a normalised value: S, N, B, BOOL, NULL, L, M, SS, NS, BS."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, str):
        return "S"
    if isinstance(value, int | Decimal):
        return "N"
    if isinstance(value, bytes):
        return "B"
    if isinstance(value, list):
        return "L"
    if isinstance(value, dict):
        return "M"
    if isinstance(value, set | frozenset):
        first = next(iter(value))
        return attribute_type(first) + "S"
    raise InvalidRequest(f"{type(value).__name__} is not a storable value")


def same_value(left: Any, right: Any) -> bool:
    """Equality as DynamoDB sees it: same type and same value (so True is not 1)."""
    kind = attribute_type(left)
    if kind != attribute_type(right):
        return False
    if kind == "L":
        return len(left) == len(right) and all(map(same_value, left, right))
    if kind == "M":
        return left.keys() == right.keys() and all(same_value(left[k], right[k]) for k in left)
    return bool(left == right)


def copy_item(item: Item) -> Item:
    """A deep copy of a normalised item, so callers never share our stored values."""
    return {name: _copy(value) for name, value in item.items()}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _copy(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [_copy(inner) for inner in value]
    if isinstance(value, set):
        return set(value)
    return value


def item_size(item: Mapping[str, Any]) -> int:
    """The size DynamoDB charges and limits: attribute names plus values, as documented in
    "DynamoDB item sizes and formats" (numbers: 1 byte per two significant digits + 1;
    lists and maps: 3 bytes plus 1 byte per element)."""
    return sum(_utf8_len(name) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return _utf8_len(value)
    if isinstance(value, bytes):
        return len(value)
    if type(value) is int and -_PLAIN_INT_LIMIT < value < _PLAIN_INT_LIMIT:
        significant = len(str(abs(value)).rstrip("0")) or 1  # zero is one digit
        return (significant + 1) // 2 + 1
    if isinstance(value, int | Decimal):
        digits = Decimal(value).normalize(_DECIMAL).as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if isinstance(value, list):
        return 3 + sum(_value_size(inner) + 1 for inner in value)
    if isinstance(value, dict):
        return 3 + sum(_utf8_len(k) + _value_size(v) + 1 for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sum(_value_size(inner) for inner in value)
    raise InvalidRequest(f"{type(value).__name__} is not a storable value")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def check_size(item: Item, size: int | None = None) -> None:
    """`ItemTooLarge` if `item` (of `size`, when already measured) is over 400 KB."""
    if size is None:
        size = item_size(item)
    if size > MAX_ITEM_SIZE:
        raise ItemTooLarge(
            f"item is {size} bytes, over DynamoDB's {MAX_ITEM_SIZE} byte (400 KB) limit",
            size=size,
        )


def key_of(spec: TableSpec, item: Mapping[str, Any], *, exact: bool = False) -> Item:
    """The primary key of `item` (normalised), checked against the spec's key types.

    With `exact`, `item` must be a key and nothing more (as for get and delete).
    """
    key = {}
    for attribute in spec.key_attributes:
        if attribute.name not in item:
            raise InvalidRequest(
                f"table {spec.name!r}: key attribute {attribute.name!r} is missing "
                f"from {dict(item)!r}"
            )
        key[attribute.name] = check_key_value(attribute, normalize_value(item[attribute.name]))
    if exact and len(item) != len(key):
        extra = sorted(set(item) - set(key))
        raise InvalidRequest(f"table {spec.name!r}: a key holds only {list(key)}, not {extra}")
    return key


def check_key_value(attribute: KeyAttribute, value: Any, where: str = "key") -> Any:
    if attribute_type(value) != attribute.type.value:
        raise InvalidRequest(
            f"{where} attribute {attribute.name!r} must be of type {attribute.type.value}, "
            f"got {value!r}"
        )
    if attribute.type is not KeyType.NUMBER and len(value) == 0:
        raise InvalidRequest(f"{where} attribute {attribute.name!r} cannot be empty")
    return value


def sortable(value: Any) -> Any:
    """The value DynamoDB orders key attributes by: strings by UTF-8 bytes, numbers by
    value, binary by bytes."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int):
        return Decimal(value)
    return value


def encode_cursor(values: Mapping[str, Any]) -> str:
    """An opaque cursor for a page boundary made of key values (str, number, bytes)."""
    tagged = {name: _tag(value) for name, value in values.items()}
    return base64.urlsafe_b64encode(orjson.dumps(tagged)).decode("ascii")


def decode_cursor(cursor: str) -> Item:
    try:
        tagged = orjson.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        return {name: _untag(kind, text) for name, (kind, text) in tagged.items()}
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidRequest(f"not a cursor this table returned: {cursor!r}") from error


def _tag(value: Any) -> tuple[str, str]:
    kind = attribute_type(value)
    if kind == "B":
        return kind, base64.b64encode(value).decode("ascii")
    if kind in ("S", "N"):
        return kind, str(value)
    raise InvalidRequest(f"cursors hold key values only, got {value!r}")


def _untag(kind: str, text: str) -> Any:
    if kind == "S":
        return text
    if kind == "N":
        return _number(Decimal(text))
    if kind == "B":
        return base64.b64decode(text)
    raise KeyError(kind)


def check_item(spec: TableSpec, item: Item, size: int | None = None) -> None:
    """Reject what DynamoDB would: a mistyped index key, a non-numeric TTL, an item over
    400 KB (`size`, when already measured). (A non-numeric TTL is legal in DynamoDB but
    never expires; we call it a bug.)"""
    for index in spec.indexes:
        for attribute in index.key_attributes:
            if attribute.name in item:
                check_key_value(attribute, item[attribute.name], f"index {index.name!r} key")
    ttl = spec.ttl_attribute
    if ttl is not None and ttl in item and attribute_type(item[ttl]) != "N":
        raise InvalidRequest(f"TTL attribute {ttl!r} holds epoch seconds, got {item[ttl]!r}")
    check_size(item, size)
