"""Fresh tables for storage tests: in memory, or DynamoTable on the session's moto server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from bus.storage import InMemoryTable, Table, TableSpec


@asynccontextmanager
async def table_maker(
    request: pytest.FixtureRequest, now: Callable[[], float], **defaults: Any
) -> AsyncIterator[Callable[..., Any]]:
    """`make(now=..., **spec_fields)` builds an empty table of the kind `request.param` names
    ("memory" or "dynamodb"), uniquely named. DynamoDB tables share one client configured
    as the platform configures its own (`AwsClients`: standard retries, 3 attempts), closed
    on exit."""
    async with AsyncExitStack() as opened:
        client: Any = None

        async def make(now: Callable[[], float] = now, **spec_fields: Any) -> Table:
            nonlocal client
            spec = TableSpec(name=f"t-{uuid.uuid4().hex[:12]}", **{**defaults, **spec_fields})
            if request.param == "memory":
                return InMemoryTable(spec, now=now)
            from adapters.aws.dynamodb import DynamoTable
            from adapters.aws.session import AwsClients, AwsSettings

            if client is None:
                settings = AwsSettings(endpoint_url=request.getfixturevalue("moto_endpoint"))
                clients = AwsClients(settings, "dynamodb")
                client = (await opened.enter_async_context(clients)).dynamodb
            table = DynamoTable(spec, client=client, now=now)
            await table.provision()
            return table

        yield make
