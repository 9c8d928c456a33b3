"""Matching events nested as deep as JSON from the wire may be (orjson reads 1024 levels):
no step of it recurses once per level of the event."""

from __future__ import annotations

from typing import Any

import orjson

from bus.routing import compile_event_pattern, compile_filter_policy
from bus.routing.matcher import expand_dotted_keys

DEPTH = 1020


def nested_objects(depth: int, leaf: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"n": leaf}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_a_leaf_finds_a_scalar_under_a_thousand_arrays() -> None:
    deep = orjson.loads(b"[" * DEPTH + b'"x", 5' + b"]" * DEPTH)
    assert compile_event_pattern({"v": ["x"]}).match({"v": deep})
    assert compile_event_pattern({"v": [{"numeric": [">", 4]}]}).match({"v": deep})
    assert not compile_event_pattern({"v": ["y"]}).match({"v": deep})
    policy = compile_filter_policy({"v": ["x"]}, "MessageBody")
    assert policy.match(body={"v": deep})


def test_an_object_pattern_finds_an_object_under_a_thousand_arrays() -> None:
    deep = orjson.loads(b"[" * DEPTH + b'1, {"k": "x"}' + b"]" * DEPTH)
    assert compile_event_pattern({"v": {"k": ["x"]}}).match({"v": deep})
    assert not compile_event_pattern({"v": {"k": ["y"]}}).match({"v": deep})


def test_dotted_keys_merge_objects_a_thousand_deep() -> None:
    event = {"a.b": nested_objects(DEPTH, 1), "a": {"b": nested_objects(DEPTH, 2)}}
    merged = expand_dotted_keys(event)
    value: Any = merged["a"]["b"]
    for _ in range(DEPTH):
        value = value["n"]
    assert value == [1, 2]
