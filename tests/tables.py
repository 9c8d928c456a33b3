"""Fresh tables for storage tests: in memory, or DynamoTable on the session's moto server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bus.storage import InMemoryTable, Table, TableSpec


@asynccontextmanager
async def table_maker(
    request: pytest.FixtureRequest, now: Callable[[], float], **defaults: Any
) -> AsyncIterator[Callable[..., Any]]:
    """`make(now=..., **spec_fields)` builds an empty table of the kind `request.param` names
    ("memory" or "dynamodb"), uniquely named; DynamoDB clients close on exit."""
    opened: list[Any] = []

    async def make(now: Callable[[], float] = now, **spec_fields: Any) -> Table:
        spec = TableSpec(name=f"t-{uuid.uuid4().hex[:12]}", **{**defaults, **spec_fields})
        if request.param == "memory":
            return InMemoryTable(spec, now=now)
        from adapters.aws.dynamodb import DynamoTable

        endpoint = request.getfixturevalue("moto_endpoint")
        table = DynamoTable(spec, endpoint_url=endpoint, now=now)
        opened.append(table)
        await table.provision()
        return table

    try:
        yield make
    finally:
        for table in opened:
            await table.aclose()
