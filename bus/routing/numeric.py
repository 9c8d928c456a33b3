"""The `numeric` operator: one comparison or a range, validated as AWS's rule compiler does.

Shared by EventBridge patterns and SNS filter policies; messages carry AWS's wording.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from bus.routing.errors import PatternError

NumTest = Callable[[float], bool]

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
