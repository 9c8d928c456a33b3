"""The leaf operators shared by EventBridge event patterns and SNS filter policies.

A leaf is the array under a field name (`"state": ["on", {"prefix": "x"}]`); it compiles once
into a `Leaf` whose `match()` looks at the event value found at that field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from bus.routing.addresses import compile_cidr, in_network, ip_equals, ip_if_possible
from bus.routing.errors import PatternError
from bus.routing.numeric import NumTest, compile_numeric
from bus.routing.wildcard import compile_wildcard

MISSING: Final[Any] = object()
"""Stands for a field the event does not have."""

RESERVED_KEYWORDS: Final = frozenset(
    {
        "exactly",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "wildcard",
        "numeric",
        "cidr",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)
"""Field names that stop `$or` from being read as an OR (event-ruler's reserved words)."""

StrTest = Callable[[str], bool]
ValueTest = Callable[[Any], bool]


@dataclass(frozen=True)
class Dialect:
    """What one rule language accepts where EventBridge and SNS differ."""

    name: str
    wildcard: bool
    """`wildcard` and `anything-but: {wildcard}` exist (EventBridge only)."""
    ignore_case_affixes: bool
    """`prefix`/`suffix` accept `{"equals-ignore-case": ...}` (EventBridge only)."""
    anything_but_operators: frozenset[str]
    """Operators allowed inside an `anything-but` object."""
    anything_but_affix_lists: bool
    """`anything-but: {prefix: [...]}` takes a list of strings (EventBridge only)."""
    anything_but_affix_reason: str
    """AWS's message when an `anything-but` prefix/suffix is not a string."""


EVENTBRIDGE: Final = Dialect(
    name="EventBridge",
    wildcard=True,
    ignore_case_affixes=True,
    anything_but_operators=frozenset({"prefix", "suffix", "equals-ignore-case", "wildcard"}),
    anything_but_affix_lists=True,
    anything_but_affix_reason="prefix/suffix match pattern must be a string",
)
# SNS rejects anything-but/suffix ("Unsupported anything-but pattern: suffix", recorded against
# AWS in 2024) and has no wildcard matching.
SNS: Final = Dialect(
    name="SNS",
    wildcard=False,
    ignore_case_affixes=False,
    anything_but_operators=frozenset({"prefix", "equals-ignore-case"}),
    anything_but_affix_lists=False,
    anything_but_affix_reason="prefix match pattern must be a string",
)


class Leaf:
    """A compiled field condition: matches if any of its values or operators matches."""

    __slots__ = (
        "exists_false",
        "exists_true",
        "match_false",
        "match_null",
        "match_true",
        "num_tests",
        "numbers",
        "str_tests",
        "strings",
        "value_tests",
    )

    def __init__(self) -> None:
        self.strings: frozenset[str] = frozenset()
        self.numbers: frozenset[float] = frozenset()
        self.match_true = False
        self.match_false = False
        self.match_null = False
        self.str_tests: tuple[StrTest, ...] = ()
        self.num_tests: tuple[NumTest, ...] = ()
        self.value_tests: tuple[ValueTest, ...] = ()
        self.exists_true = False
        self.exists_false = False

    def match(self, value: Any) -> bool:
        """Whether the event value at this field satisfies the condition.

        `value` is MISSING, a JSON scalar, an object or an array; objects are not leaf values,
        and an array matches if any scalar inside it (at any depth) matches.
        """
        kind = type(value)
        if kind is list or kind is tuple:
            seen_scalar = False
            for item in flatten_scalars(value):
                seen_scalar = True
                if self.match_scalar(item):
                    return True
            return self.exists_false and not seen_scalar
        if value is MISSING or kind is dict:
            return self.exists_false
        return self.match_scalar(value)

    def match_scalar(self, value: Any) -> bool:
        if self.exists_true:
            return True
        kind = type(value)
        if kind is str:
            if value in self.strings:
                return True
            for str_test in self.str_tests:
                if str_test(value):
                    return True
        elif kind is int or kind is float:
            if value in self.numbers:
                return True
            for num_test in self.num_tests:
                if num_test(value):
                    return True
        elif value is None:
            if self.match_null:
                return True
        elif value is True:
            if self.match_true:
                return True
        elif value is False and self.match_false:
            return True
        return any(value_test(value) for value_test in self.value_tests)


def flatten_scalars(values: Iterable[Any]) -> Iterator[Any]:
    """The scalars inside a (possibly nested) JSON array, in order; objects are skipped.

    Iterative: JSON from the wire may nest arrays 1024 deep, past Python's recursion limit.
    """
    stack = [iter(values)]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is list or kind is tuple:
                stack.append(iter(item))
                break
            if kind is not dict:
                yield item
        else:
            stack.pop()


def compile_leaf(values: Any, field: str, dialect: Dialect) -> Leaf:
    """Compile the array under `field`, raising PatternError with AWS's wording."""
    if not isinstance(values, list):
        raise PatternError(f'"{field}" must be an object or an array')
    if not values:
        raise PatternError("Empty arrays are not allowed")
    builder = _LeafBuilder()
    for item in values:
        if isinstance(item, dict):
            _compile_expression(item, builder, dialect)
        elif isinstance(item, list):
            raise PatternError("Match value must be String, number, true, false, or null")
        else:
            builder.add_exact(item)
    return builder.build()


class _LeafBuilder:
    def __init__(self) -> None:
        self.leaf = Leaf()
        self.strings: set[str] = set()
        self.numbers: set[float] = set()
        self.str_tests: list[StrTest] = []
        self.num_tests: list[NumTest] = []
        self.value_tests: list[ValueTest] = []

    def add_exact(self, item: Any) -> None:
        if item is None:
            self.leaf.match_null = True
        elif item is True:
            self.leaf.match_true = True
        elif item is False:
            self.leaf.match_false = True
        elif isinstance(item, str):
            self.strings.add(item)
            address = ip_if_possible(item)
            if address is not None:
                self.str_tests.append(ip_equals(address))
        else:
            self.numbers.add(float(item))

    def build(self) -> Leaf:
        leaf = self.leaf
        leaf.strings = frozenset(self.strings)
        leaf.numbers = frozenset(self.numbers)
        leaf.str_tests = tuple(self.str_tests)
        leaf.num_tests = tuple(self.num_tests)
        leaf.value_tests = tuple(self.value_tests)
        return leaf


def _compile_expression(
    expression: dict[str, Any], builder: _LeafBuilder, dialect: Dialect
) -> None:
    if not expression:
        raise PatternError("Match expression name not found")
    operator, operand = next(iter(expression.items()))
    _compile_operator(operator, operand, builder, dialect)
    if len(expression) > 1:
        raise PatternError(
            "Too many elements in numeric expression"
            if operator in ("numeric", "anything-but")
            else "Only one key allowed in match expression"
        )


def _compile_operator(operator: str, operand: Any, builder: _LeafBuilder, dialect: Dialect) -> None:
    if operator in ("prefix", "suffix"):
        builder.str_tests.append(_affix_test(operator, operand, dialect))
    elif operator == "equals-ignore-case":
        folded = _require_string(operand, "equals-ignore-case").lower()
        builder.str_tests.append(lambda value: value.lower() == folded)
    elif operator == "wildcard" and dialect.wildcard:
        builder.str_tests.append(compile_wildcard(_require_string(operand, "wildcard")))
    elif operator == "anything-but":
        builder.value_tests.append(_anything_but(operand, dialect))
    elif operator == "numeric":
        builder.num_tests.append(compile_numeric(operand))
    elif operator == "exists":
        if operand is True:
            builder.leaf.exists_true = True
        elif operand is False:
            builder.leaf.exists_false = True
        else:
            raise PatternError("exists match pattern must be either true or false.")
    elif operator == "cidr":
        if not isinstance(operand, str):
            raise PatternError("prefix match pattern must be a string")
        builder.str_tests.append(in_network(compile_cidr(operand)))
    else:
        raise PatternError(f"Unrecognized match type {operator}")


def _require_string(operand: Any, operator: str) -> str:
    if not isinstance(operand, str):
        raise PatternError(f"{operator} match pattern must be a string")
    return operand


def _affix_test(operator: str, operand: Any, dialect: Dialect) -> StrTest:
    if isinstance(operand, dict) and dialect.ignore_case_affixes and operand:
        inner, text = next(iter(operand.items()))
        if inner != "equals-ignore-case" or len(operand) > 1:
            raise PatternError(f"{operator} match pattern must be a string")
        folded = _require_string(text, "equals-ignore-case").lower()
        if operator == "prefix":
            return lambda value: value.lower().startswith(folded)
        return lambda value: value.lower().endswith(folded)
    affix = _require_string(operand, operator)
    if operator == "prefix":
        return lambda value: value.startswith(affix)
    return lambda value: value.endswith(affix)


def _anything_but(operand: Any, dialect: Dialect) -> ValueTest:
    """`anything-but` matches any present scalar the wrapped condition does not match."""
    if isinstance(operand, dict):
        return _anything_but_operator(operand, dialect)
    if isinstance(operand, list):
        return _anything_but_values(operand)
    if isinstance(operand, bool) or not isinstance(operand, str | int | float):
        raise PatternError("Value of anything-but must be an array or single string/number value.")
    return _anything_but_values([operand])


def _anything_but_values(values: list[Any]) -> ValueTest:
    strings: set[str] = set()
    numbers: set[float] = set()
    for value in values:
        if isinstance(value, str):
            strings.add(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers.add(float(value))
        else:
            raise PatternError("Inside anything but list, start|null|boolean is not supported.")
    if bool(strings) == bool(numbers):
        raise PatternError(
            "Inside anything but list, either all values are number or string, "
            "mixed type is not supported"
        )
    if strings:
        frozen_strings = frozenset(strings)
        return lambda value: type(value) is not str or value not in frozen_strings
    frozen_numbers = frozenset(numbers)
    return lambda value: not _is_number(value) or value not in frozen_numbers


def _anything_but_operator(operand: dict[str, Any], dialect: Dialect) -> ValueTest:
    if not operand:
        raise PatternError("Anything-But expression name not found")
    operator, inner = next(iter(operand.items()))
    if operator not in dialect.anything_but_operators:
        raise PatternError(f"Unsupported anything-but pattern: {operator}")
    if operator == "equals-ignore-case":
        folded = frozenset(text.lower() for text in _ignore_case_values(inner))
        test: StrTest = lambda value: value.lower() in folded  # noqa: E731
    elif operator == "wildcard":
        texts = inner if isinstance(inner, list) else [inner]
        wildcards = [compile_wildcard(_require_string(text, "wildcard")) for text in texts]
        test = lambda value: any(wildcard(value) for wildcard in wildcards)  # noqa: E731
    else:
        test = _anything_but_affix(operator, inner, dialect)
    if len(operand) > 1:
        raise PatternError("Only one key allowed in match expression")
    return lambda value: type(value) is not str or not test(value)


def _ignore_case_values(inner: Any) -> list[str]:
    texts = inner if isinstance(inner, list) else [inner]
    if not all(isinstance(text, str) for text in texts):
        raise PatternError(
            "Inside anything-but/equals-ignore-case list, "
            "number|start|null|boolean is not supported."
        )
    return texts


def _anything_but_affix(operator: str, inner: Any, dialect: Dialect) -> StrTest:
    if isinstance(inner, dict):
        raise PatternError("Value of anything-but must be an array or single string/number value.")
    texts = inner if isinstance(inner, list) and dialect.anything_but_affix_lists else [inner]
    for text in texts:
        if not isinstance(text, str):
            raise PatternError(dialect.anything_but_affix_reason)
        if not text:
            raise PatternError("Null prefix/suffix not allowed")
    affixes = tuple(texts)
    if operator == "prefix":
        return lambda value: value.startswith(affixes)
    return lambda value: value.endswith(affixes)


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float
