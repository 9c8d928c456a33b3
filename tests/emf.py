"""Checking a document against the Embedded Metric Format specification, in every test that
reads what a runtime flushed: the JSON Schema in `tests/fixtures/emf/`, and the rules between
members that a schema cannot state."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from tests.fixtures import EMF_SCHEMA

MAX_VALUES = 100


@cache
def _validator() -> Draft202012Validator:
    schema = orjson.loads(EMF_SCHEMA.read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_emf(document: dict[str, Any]) -> dict[str, Any]:
    """`document`, once it is known to be a valid EMF document (AssertionError otherwise)."""
    errors = [error.message for error in _validator().iter_errors(document)]
    assert not errors, f"not EMF: {errors} in {document}"
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(document.get(name), str), f"dimension {name!r} not a string"
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= MAX_VALUES, f"{metric['Name']}: {len(values)} values"
            for one in values:
                assert isinstance(one, int | float) and not isinstance(one, bool), (
                    f"{metric['Name']}: {one!r} is not a number"
                )
    return document


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The EMF documents among JSON lines (log lines and metrics interleaved), each checked."""
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(check_emf(orjson.loads(line)))
    return documents
