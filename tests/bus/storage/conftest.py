"""Tables for the storage tests: every test runs on InMemoryTable and on DynamoTable (moto)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bus.clock import ManualClock
from bus.storage import InMemoryTable, Table, TableSpec, outbox_index


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "dynamodb"])
async def make_table(
    request: pytest.FixtureRequest, clock: ManualClock
) -> AsyncIterator[Callable[..., Awaitable[Table]]]:
    """Builds a fresh table with an outbox index and a TTL attribute (overridable)."""
    opened: list[Any] = []

    async def make(**spec_fields: Any) -> Table:
        fields = {"indexes": (outbox_index(),), "ttl_attribute": "expires_at", **spec_fields}
        spec = TableSpec(name=f"t-{uuid.uuid4().hex[:12]}", **fields)
        if request.param == "memory":
            return InMemoryTable(spec, now=clock.now)
        from adapters.aws.dynamodb import DynamoTable

        table = DynamoTable(
            spec, endpoint_url=request.getfixturevalue("moto_endpoint"), now=clock.now
        )
        opened.append(table)
        await table.provision()
        return table

    yield make
    for table in opened:
        await table.aclose()
