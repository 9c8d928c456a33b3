"""Properties every pattern must keep, whatever the event."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bus.routing import compile_event_pattern

keys = st.text(alphabet="abcdefgh-_", min_size=1, max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
events = st.recursive(
    st.dictionaries(keys, scalars, min_size=1, max_size=4),
    lambda children: st.dictionaries(
        keys, st.one_of(scalars, children, st.lists(scalars, min_size=1, max_size=3)), max_size=4
    ),
    max_leaves=12,
)


def _pattern_from(event: dict[str, Any]) -> dict[str, Any]:
    """A pattern whose every leaf is the event's own value at that field."""
    pattern: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            nested = _pattern_from(value)
            if nested:  # EventBridge refuses empty objects in a pattern
                pattern[key] = nested
        elif isinstance(value, list):
            pattern[key] = [value[0]]
        else:
            pattern[key] = [value]
    return pattern


@given(events)
@example({"_": {"_": {}}})  # an empty object deep inside yields no pattern field
def test_a_pattern_built_from_an_events_own_values_matches_it(event: dict[str, Any]) -> None:
    pattern = _pattern_from(event)
    if pattern:
        assert compile_event_pattern(pattern).match(event)


@given(st.one_of(st.text(max_size=8), st.integers(-1000, 1000)), st.sampled_from(["f", "a.b"]))
def test_anything_but_a_value_never_matches_that_value(value: Any, field: str) -> None:
    pattern = compile_event_pattern({field: [{"anything-but": [value]}]})
    head, _, tail = field.partition(".")
    event = {head: {tail: value}} if tail else {head: value}
    assert not pattern.match(event)


leaf_conditions = st.sampled_from(
    [
        ["x"],
        [1],
        [{"prefix": "a"}],
        [{"numeric": [">", 0]}],
        [{"exists": False}],
        [{"anything-but": "x"}],
        [{"wildcard": "*b*"}],
    ]
)
simple_patterns = st.dictionaries(st.sampled_from(["p", "q", "r"]), leaf_conditions, min_size=1)
simple_events = st.dictionaries(
    st.sampled_from(["p", "q", "r", "s"]),
    st.one_of(st.sampled_from(["x", "abc", "b", ""]), st.integers(-2, 2), st.none()),
)


@given(simple_patterns, simple_patterns, simple_events)
def test_or_of_two_patterns_matches_exactly_when_either_does(
    first: dict[str, Any], second: dict[str, Any], event: dict[str, Any]
) -> None:
    either = compile_event_pattern({"$or": [first, second]})
    expected = compile_event_pattern(first).match(event) or compile_event_pattern(second).match(
        event
    )
    assert either.match(event) is expected
