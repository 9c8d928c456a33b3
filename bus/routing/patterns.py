"""EventBridge event patterns: validation with AWS's messages, and a compiled matcher.

The rules are those of EventBridge's rule language (aws/event-ruler, array-consistent mode).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from bus.routing.errors import InvalidEventPattern, PatternError
from bus.routing.matcher import Node, compile_tree
from bus.routing.operators import EVENTBRIDGE

MAX_BRANCHES: Final = 1000
"""Most plain rules a pattern may fork into through `$or`.

AWS documents no number for EventBridge; this bound keeps one match cheap, and the error uses
the wording AWS gives for patterns that are too complex.
"""


class EventPattern:
    """A compiled, validated event pattern; `match()` is safe to call on the dispatch path."""

    __slots__ = ("_root", "pattern")

    def __init__(self, pattern: Mapping[str, Any], root: Node) -> None:
        self.pattern = pattern
        self._root = root

    def match(self, event: Mapping[str, Any]) -> bool:
        """Whether `event` (a decoded JSON object) matches, exactly as EventBridge decides."""
        return self._root.match(event)

    def __repr__(self) -> str:
        return f"EventPattern({json.dumps(self.pattern)})"


def compile_event_pattern(pattern: Mapping[str, Any] | str) -> EventPattern:
    """Validate and compile a pattern (an object, or its JSON text).

    Raises InvalidEventPattern with the reason EventBridge gives for the same pattern.
    """
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError as error:
            raise InvalidEventPattern(f"Filter is not valid JSON: {error}") from None
    try:
        root = compile_tree(pattern, EVENTBRIDGE)
    except PatternError as error:
        raise InvalidEventPattern(error.reason) from None
    if root.branch_count() > MAX_BRANCHES:
        raise InvalidEventPattern("Rule is too complex")
    assert isinstance(pattern, Mapping)
    return EventPattern(pattern, root)


def validate_event_pattern(pattern: Mapping[str, Any] | str) -> None:
    """Raise InvalidEventPattern if EventBridge would reject `pattern`."""
    compile_event_pattern(pattern)


def event_pattern_matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """One-off match; compile once with `compile_event_pattern` when matching many events."""
    return compile_event_pattern(pattern).match(event)
