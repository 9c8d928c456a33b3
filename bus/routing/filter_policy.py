"""SNS subscription filter policies: validation with SNS's messages, and a compiled matcher.

Message-attribute scope matches the attributes a message was published with (String,
String.Array element by element, Number; Binary is ignored); message-body scope matches the
JSON body with nesting, like an event pattern. SNS has no `wildcard` operator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from bus.routing.errors import InvalidFilterPolicy, NestingNotAllowed, PatternError
from bus.routing.matcher import OR_KEYWORD, Node, compile_tree, is_or_relationship
from bus.routing.operators import SNS

FilterPolicyScope = Literal["MessageAttributes", "MessageBody"]

MAX_KEYS: Final = 5
"""Top-level keys a policy may have (in body scope nested keys do not count)."""
MAX_COMBINATIONS: Final = 150
"""Most value combinations a policy may have, counted the way SNS documents."""

_SCOPES: Final = ("MessageAttributes", "MessageBody")


class FilterPolicy:
    """A compiled, validated filter policy for one subscription scope."""

    __slots__ = ("_root", "policy", "scope")

    def __init__(self, policy: Mapping[str, Any], scope: FilterPolicyScope, root: Node | None):
        self.policy = policy
        self.scope = scope
        self._root = root

    def match(
        self,
        *,
        message_attributes: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | str | None = None,
    ) -> bool:
        """Whether SNS would deliver this message to the subscription.

        `message_attributes` is in any wire form SNS, SQS or Lambda use
        (`{"n": {"Type": "String", "Value": "v"}}`, `{"DataType", "StringValue"}`,
        `{"dataType", "stringValue"}`); `body` is the message as a JSON string or decoded.
        """
        if self._root is None:
            return True
        if self.scope == "MessageAttributes":
            return self._root.match(attribute_fields(message_attributes or {}))
        if isinstance(body, str | bytes):
            try:
                body = json.loads(body)
            except ValueError:
                return False
        return isinstance(body, dict) and self._root.match(body)

    def __repr__(self) -> str:
        return f"FilterPolicy({json.dumps(self.policy)}, scope={self.scope!r})"


def compile_filter_policy(
    policy: Mapping[str, Any] | str, scope: FilterPolicyScope = "MessageAttributes"
) -> FilterPolicy:
    """Validate and compile a policy (an object, or its JSON text); `{}` accepts everything.

    Raises InvalidFilterPolicy with the reason SNS gives for the same policy.
    """
    if scope not in _SCOPES:
        raise InvalidFilterPolicy(
            f"Invalid value [{scope}]",
            message=f"Invalid parameter: FilterPolicyScope: Invalid value [{scope}]. "
            "Please use either MessageBody or MessageAttributes",
        )
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as error:
            raise InvalidFilterPolicy(f"Filter is not valid JSON: {error}") from None
    if not isinstance(policy, dict):
        raise InvalidFilterPolicy("Filter is not an object")
    if not policy:
        return FilterPolicy(policy, scope, None)
    if len(policy) > MAX_KEYS:
        raise InvalidFilterPolicy(f"Filter policy can not have more than {MAX_KEYS} keys")
    try:
        root = compile_tree(policy, SNS, nesting=scope == "MessageBody")
    except NestingNotAllowed:
        reason = "Filter policy scope MessageAttributes does not support nested filter policy"
        raise InvalidFilterPolicy(reason, message=f"Invalid parameter: {reason}") from None
    except PatternError as error:
        raise InvalidFilterPolicy(error.reason) from None
    if combinations(policy) > MAX_COMBINATIONS:
        raise InvalidFilterPolicy("Filter policy is too complex")
    return FilterPolicy(policy, scope, root)


def validate_filter_policy(
    policy: Mapping[str, Any] | str, scope: FilterPolicyScope = "MessageAttributes"
) -> None:
    """Raise InvalidFilterPolicy if SNS would reject `policy` for `scope`."""
    compile_filter_policy(policy, scope)


def filter_policy_matches(
    policy: Mapping[str, Any] | str,
    *,
    message_attributes: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | str | None = None,
    scope: FilterPolicyScope = "MessageAttributes",
) -> bool:
    """One-off match; compile once with `compile_filter_policy` when matching many messages."""
    policy_matcher = compile_filter_policy(policy, scope)
    return policy_matcher.match(message_attributes=message_attributes, body=body)


def combinations(policy: Mapping[str, Any], depth: int = 1) -> int:
    """SNS's complexity count: each array adds (values x nesting depth), `$or` branches add up.

    This is the arithmetic of SNS's documentation ("3 x 4 x 2 x 3 x 1 x 3 = 216" for arrays
    of 4, 3 and 3 values at depths 3, 2 and 1), which AWS-recorded `$or` cases confirm.
    """
    total = 1
    for key, value in policy.items():
        if key == OR_KEYWORD and is_or_relationship(value):
            total *= sum(combinations(branch, depth) for branch in value)
        elif isinstance(value, dict):
            total *= combinations(value, depth + 1)
        elif isinstance(value, list):
            total *= len(value) * depth
    return total


def attribute_fields(message_attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Message attributes as the JSON values SNS filters on (Binary attributes dropped).

    String.Array (and Number.Array, which SNS's documentation also shows) hold a JSON array
    whose elements are matched one by one; an unparsable array stays one plain string.
    """
    fields: dict[str, Any] = {}
    for name, attribute in message_attributes.items():
        if not isinstance(attribute, Mapping):
            continue
        data_type = _first(attribute, "Type", "DataType", "dataType")
        value = _first(attribute, "Value", "StringValue", "stringValue")
        if not isinstance(data_type, str) or data_type.startswith("Binary") or value is None:
            continue
        if data_type in ("String.Array", "Number.Array"):
            fields[name] = _json_array(value)
        elif data_type.startswith("Number"):
            number = _number(value)
            if number is not None:
                fields[name] = number
        else:
            fields[name] = value
    return fields


def _first(attribute: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in attribute:
            return attribute[key]
    return None


def _json_array(value: Any) -> Any:
    if isinstance(value, list):
        return value
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    return decoded if isinstance(decoded, list) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
