"""DynamoDB requests' expressions and values: our conditions rendered by boto3's own
`ConditionExpressionBuilder`, update clauses with their placeholders, and items
(de)serialised with boto3's `TypeSerializer`/`TypeDeserializer` after the port's
normalisation, so reads match `InMemoryTable` value for value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.conditions import Attr as BotoAttr
from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.conditions import Key as BotoKey
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from bus.storage.conditions import (
    And,
    AttributeType,
    BeginsWith,
    Between,
    Comparison,
    Condition,
    Contains,
    Exists,
    In,
    Not,
    NotExists,
    Or,
)
from bus.storage.errors import InvalidRequest
from bus.storage.items import Item, normalize_value

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class Expressions:
    """Placeholders for one request: boto3 renders conditions, we render update clauses."""

    def __init__(self) -> None:
        self._builder = ConditionExpressionBuilder()
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}

    def add(self, condition: Condition, *, is_key: bool = False) -> str:
        built = self._builder.build_expression(to_boto(condition, is_key), is_key_condition=is_key)
        self._names.update(built.attribute_name_placeholders)
        self._values.update(serialize(built.attribute_value_placeholders))
        return str(built.condition_expression)

    def name(self, name: str) -> str:
        placeholder = f"#u{len(self._names)}"
        self._names[placeholder] = name
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":u{len(self._values)}"
        self._values[placeholder] = _serializer.serialize(value)
        return placeholder

    def placeholders(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._names:
            out["ExpressionAttributeNames"] = self._names
        if self._values:
            out["ExpressionAttributeValues"] = self._values
        return out


def to_boto(condition: Condition, is_key: bool = False) -> ConditionBase:
    """The boto3 condition equal to one of ours (`Key` for key conditions, else `Attr`)."""
    match condition:
        case And(left, right):
            return to_boto(left, is_key) & to_boto(right, is_key)
        case Or(left, right):
            return to_boto(left) | to_boto(right)
        case Not(inner):
            return ~to_boto(inner)
    path: str = condition.path  # type: ignore[attr-defined]
    attribute = BotoKey(path) if is_key else BotoAttr(path)
    match condition:
        case Comparison(_, operator, value):
            method = {"=": "eq", "<>": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
            return getattr(attribute, method[operator])(value)
        case Between(_, low, high):
            return attribute.between(low, high)
        case BeginsWith(_, prefix):
            return attribute.begins_with(prefix)
        case In(_, values):
            return attribute.is_in(list(values))
        case Contains(_, value):
            return attribute.contains(value)
        case Exists():
            return attribute.exists()
        case NotExists():
            return attribute.not_exists()
        case AttributeType(_, type_):
            return attribute.attribute_type(type_)
    raise InvalidRequest(f"not a condition: {condition!r}")


def condition_request(condition: Condition | None) -> dict[str, Any]:
    if condition is None:
        return {}
    expressions = Expressions()
    return {"ConditionExpression": expressions.add(condition), **expressions.placeholders()}


def serialize(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(normalize_value(v)) for name, v in values.items()}


def deserialize(values: Mapping[str, Any]) -> Item:
    return {
        name: normalize_value(_plain(_deserializer.deserialize(v))) for name, v in values.items()
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {name: _plain(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    if isinstance(value, set):
        return {_plain(inner) for inner in value}
    return value
