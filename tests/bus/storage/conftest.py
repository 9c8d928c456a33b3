"""Tables for the storage tests: every test runs on InMemoryTable and on DynamoTable (moto)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bus.clock import ManualClock
from bus.storage import Table, outbox_index
from tests.tables import table_maker


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "dynamodb"])
async def make_table(
    request: pytest.FixtureRequest, clock: ManualClock
) -> AsyncIterator[Callable[..., Awaitable[Table]]]:
    """Builds a fresh table with an outbox index and a TTL attribute (overridable)."""
    defaults = {"indexes": (outbox_index(),), "ttl_attribute": "expires_at"}
    async with table_maker(request, clock.now, **defaults) as make:
        yield make
