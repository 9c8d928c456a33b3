"""EventBridge's `wildcard` operator: `*` runs of characters, and AWS's complexity limit.

A wildcard compiles once into a string test; one that could keep too many automaton states
alive at once is refused with AWS's wording, as EventBridge refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from bus.routing.errors import PatternError

WILDCARD_COMPLEXITY_LIMIT: Final = 10
"""Most NFA states one wildcard may keep alive at once; AWS rejects busier ones as too complex."""


def compile_wildcard(pattern: str) -> Callable[[str], bool]:
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
