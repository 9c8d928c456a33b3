"""Comparing JSON Schemas by what they accept: local `$ref`s resolved, annotations dropped.

The event catalog compares a payload with its snapshot, and the client check compares an
`Operation` with its domain's OpenAPI document, both through `meaning`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Schema keys that document a value without changing what it accepts.
ANNOTATIONS = frozenset({"title", "description", "examples", "default"})
#: How deep `$ref`s are followed: a recursive model stops being expanded there.
_MAX_DEPTH = 32


def resolved(schema: Mapping[str, Any], definitions: Mapping[str, Any], prefix: str) -> Any:
    """`schema` with every `$ref` starting with `prefix` replaced by the definition it names
    in `definitions`, and `$defs` dropped."""

    def resolve(node: Any, depth: int) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and depth < _MAX_DEPTH:
                return resolve(definitions[ref.removeprefix(prefix)], depth + 1)
            return {k: resolve(v, depth) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(item, depth) for item in node]
        return node

    return resolve(dict(schema), 0)


def self_contained(schema: Mapping[str, Any]) -> Any:
    """A pydantic model's schema with its own `$defs` inlined."""
    return resolved(schema, schema.get("$defs", {}), "#/$defs/")


def meaning(node: Any) -> Any:
    """A schema without its annotations: what it accepts, nothing of how it is described."""
    if isinstance(node, dict):
        return {k: meaning(v) for k, v in node.items() if k not in ANNOTATIONS}
    if isinstance(node, list):
        return [meaning(item) for item in node]
    return node
