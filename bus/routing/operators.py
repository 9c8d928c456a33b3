"""The leaf operators shared by EventBridge event patterns and SNS filter policies.

A leaf is the array under a field name (`"state": ["on", {"prefix": "x"}]`); it compiles once
into a `Leaf` whose `match()` looks at the event value found at that field.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

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

WILDCARD_COMPLEXITY_LIMIT: Final = 10
"""Most NFA states one wildcard may keep alive at once; AWS rejects busier ones as too complex."""

_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")

StrTest = Callable[[str], bool]
NumTest = Callable[[float], bool]
ValueTest = Callable[[Any], bool]


class PatternError(Exception):
    """Raised by the leaf compiler; each language wraps `reason` in its own public error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    """The scalars inside a (possibly nested) JSON array; objects are skipped."""
    for item in values:
        kind = type(item)
        if kind is list or kind is tuple:
            yield from flatten_scalars(item)
        elif kind is not dict:
            yield item


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
                self.str_tests.append(_ip_equals(address))
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
        builder.str_tests.append(_in_network(compile_cidr(operand)))
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


# --- wildcard -------------------------------------------------------------------------------


def compile_wildcard(pattern: str) -> StrTest:
    """`*` matches any run of characters; `\\*` is a literal star and `\\\\` a backslash."""
    parts: list[str] = []
    tokens: list[str | None] = []  # None stands for a wildcard
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern) and pattern[index + 1] in "*\\":
            tokens.append(pattern[index + 1])
            index += 2
            continue
        if char == "*":
            if tokens and tokens[-1] is None:
                raise PatternError(f"Consecutive wildcard characters at pos {index}")
            tokens.append(None)
        else:
            tokens.append(char)
        index += 1
    if _wildcard_complexity(tokens) > WILDCARD_COMPLEXITY_LIMIT:
        raise PatternError(
            "Rule is too complex - try using fewer wildcard characters or fewer repeating "
            "character sequences after a wildcard character"
        )
    if None not in tokens:
        literal = "".join(token for token in tokens if token is not None)
        return lambda value: value == literal
    for token in tokens:
        parts.append(".*" if token is None else re.escape(token))
    fullmatch = re.compile("".join(parts), re.DOTALL).fullmatch
    return lambda value: fullmatch(value) is not None


def _wildcard_complexity(tokens: list[str | None]) -> int:
    """Most states the wildcard's automaton can be in at once, over every possible input."""
    if tokens.count(None) < 2:
        return 1
    end = len(tokens)

    def closure(states: set[int]) -> frozenset[int]:
        pending = list(states)
        while pending:
            state = pending.pop()
            if state < end and tokens[state] is None and state + 1 not in states:
                states.add(state + 1)
                pending.append(state + 1)
        return frozenset(states)

    alphabet = {token for token in tokens if token is not None} | {""}
    start = closure({0})
    seen = {start}
    frontier = [start]
    widest = len(start)
    while frontier and len(seen) < 10_000:
        current = frontier.pop()
        for char in alphabet:
            step = {
                state + (tokens[state] is not None)
                for state in current
                if state < end and (tokens[state] is None or tokens[state] == char)
            }
            if not step:
                continue
            following = closure(step)
            if following not in seen:
                seen.add(following)
                frontier.append(following)
                widest = max(widest, len(following))
                if widest > WILDCARD_COMPLEXITY_LIMIT:
                    return widest
    return widest if len(seen) < 10_000 else WILDCARD_COMPLEXITY_LIMIT + 1


# --- numeric --------------------------------------------------------------------------------

_LOWER = {">": False, ">=": True}
_UPPER = {"<": False, "<=": True}


def compile_numeric(operand: Any) -> NumTest:
    """`{"numeric": [">", 0, "<=", 5]}`, validated the way AWS's rule compiler does."""
    if not isinstance(operand, list):
        raise PatternError("Value of numeric must be an array.")
    terms = [*operand, _END]
    operator = terms[0]
    if not isinstance(operator, str) or operator is _END:
        raise PatternError(f"Invalid member in numeric match: {_json_text(operator)}")
    value = terms[1]
    if operator == "=":
        number = _require_number(value, "equals")
        _require_end(terms, 2, "Too many elements in numeric expression")
        return lambda candidate: candidate == number
    if operator in _UPPER:
        top = _require_number(value, operator)
        _require_end(terms, 2, "Too many elements in numeric expression")
        return _range(None, False, top, _UPPER[operator])
    if operator not in _LOWER:
        raise PatternError(f"Unrecognized numeric range operator: {operator}")
    bottom = _require_number(value, operator)
    if terms[2] is _END:
        return _range(bottom, _LOWER[operator], None, False)
    upper = terms[2]
    if not isinstance(upper, str):
        raise PatternError(f"Bad value in numeric range: {_json_text(upper)}")
    if upper not in _UPPER:
        raise PatternError(f"Bad numeric range operator: {upper}")
    top = _require_number(terms[3], upper)
    _require_end(terms, 4, "Too many terms in numeric range expression")
    if bottom >= top:
        raise PatternError("Bottom must be less than top")
    return _range(bottom, _LOWER[operator], top, _UPPER[upper])


class _EndOfArray:
    def __repr__(self) -> str:
        return "]"


_END: Final[Any] = _EndOfArray()


def _require_number(value: Any, operator: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PatternError(f"Value of {operator} must be numeric")
    return float(value)


def _require_end(terms: list[Any], index: int, reason: str) -> None:
    if terms[index] is not _END:
        raise PatternError(reason)


def _range(
    bottom: float | None, bottom_closed: bool, top: float | None, top_closed: bool
) -> NumTest:
    if top is None:
        assert bottom is not None
        low = bottom
        return (lambda value: value >= low) if bottom_closed else (lambda value: value > low)
    high = top
    if bottom is None:
        return (lambda value: value <= high) if top_closed else (lambda value: value < high)
    low = bottom
    if bottom_closed and top_closed:
        return lambda value: low <= value <= high
    if bottom_closed:
        return lambda value: low <= value < high
    if top_closed:
        return lambda value: low < value <= high
    return lambda value: low < value < high


def _json_text(value: Any) -> str:
    """What AWS's JSON parser prints for a token it did not expect."""
    if value is _END:
        return "]"
    if isinstance(value, dict):
        return "{"
    if isinstance(value, list):
        return "["
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --- IP addresses ---------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = tuple[int, int, int]  # (version, lowest, highest)


def ip_if_possible(text: str) -> Address | None:
    """The address `text` spells, if it has the shape of an IPv4 or IPv6 literal."""
    if not (_IPV4_SHAPE.fullmatch(text) or _IPV6_SHAPE.fullmatch(text)):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def compile_cidr(text: str) -> Network:
    """Parse `a.b.c.d/n` with AWS's messages; the range runs from the address as written."""
    pieces = text.split("/")
    while len(pieces) > 1 and not pieces[-1]:
        pieces.pop()  # split as Java does: trailing empty pieces are dropped
    if len(pieces) != 2:
        raise PatternError("Malformed CIDR, one '/' required")
    address_text, mask_text = pieces
    try:
        mask = int(mask_text)
    except ValueError:
        raise PatternError("Malformed CIDR, mask bits must be an integer") from None
    if mask < 0:
        raise PatternError("Malformed CIDR, mask bits must not be negative")
    shaped = _IPV4_SHAPE.fullmatch(address_text) or _IPV6_SHAPE.fullmatch(address_text)
    if not shaped:
        raise PatternError(f"Nonstandard IP address: {address_text}")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        raise PatternError(f"Invalid IP address: {address_text}") from None
    if address.version == 4 and mask > 31:
        raise PatternError("IPv4 mask bits must be < 32")
    if address.version == 6 and mask > 127:
        raise PatternError("IPv6 mask bits must be < 128")
    host_bits = address.max_prefixlen - mask
    lowest = int(address)
    return (address.version, lowest, lowest | ((1 << host_bits) - 1))


def _in_network(network: Network) -> StrTest:
    version, lowest, highest = network

    def test(value: str) -> bool:
        address = ip_if_possible(value)
        return (
            address is not None and address.version == version and lowest <= int(address) <= highest
        )

    return test


def _ip_equals(expected: Address) -> StrTest:
    return lambda value: ip_if_possible(value) == expected
