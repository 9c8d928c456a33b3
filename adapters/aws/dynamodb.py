"""`DynamoTable`: the storage port on DynamoDB through aioboto3 (or a botocore client run in
threads), and `DynamoTables`, the runtime's table factory on one shared client.

Expressions and values are rendered by `adapters.aws.dynamodb_expressions`; creating a
table is provisioning (`adapters.aws.provision.create_table`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from adapters.aws.dynamodb_errors import storage_error
from adapters.aws.dynamodb_expressions import (
    Expressions,
    condition_request,
    deserialize,
    serialize,
)
from adapters.aws.session import AwsClients, AwsSettings
from bus.errors import ConfigurationError
from bus.storage.conditions import And, Condition, matches
from bus.storage.items import Item, check_item, decode_cursor, encode_cursor, key_of, normalize_item
from bus.storage.spec import TableSpec
from bus.storage.table import (
    ConditionCheck,
    Delete,
    Page,
    Put,
    TransactOperation,
    Update,
    carried_size,
    check_query,
    check_transaction,
    check_transaction_size,
    check_update,
    live_condition,
)

if TYPE_CHECKING:
    # aioboto3 (aiobotocore, aiohttp) loads only when a table opens its own client: a
    # Lambda function hands its tables a botocore client instead (decision 0008).
    import aioboto3

    from bus.clock import Clock

__all__ = ["DynamoTable", "DynamoTables"]


class DynamoTable:
    """A `Table` on DynamoDB. One client is reused for the table's life: pass one in
    (you close it), or let the table create it on first use (close with `aclose()`).

    `now` (epoch seconds) hides expired items, as `InMemoryTable` does: DynamoDB deletes
    them only eventually (typically within days).
    """

    def __init__(
        self,
        spec: TableSpec,
        *,
        client: Any = None,
        session: aioboto3.Session | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._spec = spec
        self._client = client
        self._session = session
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._now = now
        self._owned: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    @property
    def spec(self) -> TableSpec:
        return self._spec

    async def __aenter__(self) -> DynamoTable:
        await self._dynamodb()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def provision(self) -> None:
        """Create this table if it does not exist yet (`create_table` on this table's client)."""
        from adapters.aws.provision import create_table

        await create_table(self._spec, client=await self._dynamodb())

    async def aclose(self) -> None:
        """Close the client this table created, if any."""
        if self._owned is not None:
            owned, self._owned, self._client = self._owned, None, None
            await owned.aclose()

    async def get(self, key: Mapping[str, Any], *, consistent: bool = False) -> Item | None:
        request = {
            "TableName": self._spec.name,
            "Key": serialize(key_of(self._spec, key, exact=True)),
            "ConsistentRead": consistent,
        }
        response = await self._call("get_item", request)
        if "Item" not in response:
            return None
        item = deserialize(response["Item"])
        live = live_condition(self._spec, self._now())
        return item if live is None or matches(live, item) else None

    async def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        await self._call(
            "put_item", {"TableName": self._spec.name, **self._put(Put(item, condition))}
        )

    async def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> Item:
        operation = Update(key, set or {}, tuple(remove), add or {}, condition)
        request = {
            "TableName": self._spec.name,
            **self._update(operation),
            "ReturnValues": "ALL_NEW",
        }
        response = await self._call("update_item", request)
        return deserialize(response.get("Attributes", {}))

    async def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        request = {"TableName": self._spec.name, **self._keyed(Delete(key, condition))}
        await self._call("delete_item", request)

    async def query(
        self,
        key_condition: Condition,
        *,
        index: str | None = None,
        filter: Condition | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        descending: bool = False,
        consistent: bool = False,
    ) -> Page:
        check_query(self._spec, key_condition, index, limit, consistent)
        expressions = Expressions()
        request: dict[str, Any] = {
            "TableName": self._spec.name,
            "KeyConditionExpression": expressions.add(key_condition, is_key=True),
            "ScanIndexForward": not descending,
            "ConsistentRead": consistent,
        }
        live = live_condition(self._spec, self._now())
        filters = [c for c in (live, filter) if c is not None]
        if filters:
            combined = filters[0] if len(filters) == 1 else And(filters[0], filters[1])
            request["FilterExpression"] = expressions.add(combined)
        if index is not None:
            request["IndexName"] = index
        if limit is not None:
            request["Limit"] = limit
        if cursor is not None:
            request["ExclusiveStartKey"] = serialize(decode_cursor(cursor))
        response = await self._call("query", {**request, **expressions.placeholders()})
        last = response.get("LastEvaluatedKey")
        return Page(
            [deserialize(item) for item in response.get("Items", [])],
            None if last is None else encode_cursor(deserialize(last)),
        )

    async def transact(self, operations: Sequence[TransactOperation]) -> None:
        check_transaction(self._spec, operations)
        items = [self._transact_item(operation) for operation in operations]
        # What the request carries is checked here; an Update growing a stored item past the
        # 4 MB total is refused by DynamoDB, and mapped to the same error.
        check_transaction_size([carried_size(self._spec, operation) for operation in operations])
        await self._call("transact_write_items", {"TransactItems": items})

    def _transact_item(self, operation: TransactOperation) -> dict[str, Any]:
        named = {"TableName": self._spec.name}
        if isinstance(operation, Put):
            return {"Put": {**named, **self._put(operation)}}
        if isinstance(operation, Update):
            return {"Update": {**named, **self._update(operation)}}
        if isinstance(operation, Delete):
            return {"Delete": {**named, **self._keyed(operation)}}
        return {"ConditionCheck": {**named, **self._keyed(operation)}}

    def _put(self, operation: Put) -> dict[str, Any]:
        item = normalize_item(operation.item)
        key_of(self._spec, item)
        check_item(self._spec, item)
        return {"Item": serialize(item), **condition_request(operation.condition)}

    def _keyed(self, operation: Delete | ConditionCheck) -> dict[str, Any]:
        key = serialize(key_of(self._spec, operation.key, exact=True))
        return {"Key": key, **condition_request(operation.condition)}

    def _update(self, operation: Update) -> dict[str, Any]:
        check_update(self._spec, operation)
        key = key_of(self._spec, operation.key, exact=True)
        changed = normalize_item({**operation.set, **operation.add})
        check_item(self._spec, {**key, **changed})
        expressions = Expressions()
        clauses = []
        if operation.set:
            assignments = [
                f"{expressions.name(n)} = {expressions.value(changed[n])}" for n in operation.set
            ]
            clauses.append("SET " + ", ".join(assignments))
        if operation.remove:
            clauses.append("REMOVE " + ", ".join(expressions.name(n) for n in operation.remove))
        if operation.add:
            additions = [
                f"{expressions.name(n)} {expressions.value(changed[n])}" for n in operation.add
            ]
            clauses.append("ADD " + ", ".join(additions))
        request: dict[str, Any] = {"Key": serialize(key)}
        if clauses:
            request["UpdateExpression"] = " ".join(clauses)
        if operation.condition is not None:
            request["ConditionExpression"] = expressions.add(operation.condition)
        return {**request, **expressions.placeholders()}

    async def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        client = await self._dynamodb()
        try:
            response: dict[str, Any] = await getattr(client, operation)(**request)
        except ClientError as error:
            raise storage_error(error) from error
        return response

    async def _dynamodb(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    import aioboto3

                    stack = AsyncExitStack()
                    session = self._session or aioboto3.Session()
                    client = session.client(
                        "dynamodb", endpoint_url=self._endpoint_url, region_name=self._region_name
                    )
                    self._client = await stack.enter_async_context(client)
                    self._owned = stack
        return self._client


class DynamoTables:
    """A `bus.runtime.TableFactory` on DynamoDB: a `DynamoTable` per spec, every one on the
    same client, opened on entry and closed on exit.

        async with DynamoTables(AwsSettings(endpoint_url=url)) as tables:
            runtime = Runtime(domains, transport, tables=tables)
    """

    def __init__(self, settings: AwsSettings | None = None) -> None:
        self._clients = AwsClients(settings or AwsSettings(), "dynamodb")
        self._client: Any = None

    async def __aenter__(self) -> DynamoTables:
        await self._clients.__aenter__()
        self._client = self._clients.dynamodb
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._client = None
        await self._clients.__aexit__(None, None, None)

    def __call__(self, spec: TableSpec, clock: Clock) -> DynamoTable:
        if self._client is None:
            raise ConfigurationError(
                "DynamoTables makes tables only inside `async with DynamoTables(...)`, which "
                "opens the client they share"
            )
        return DynamoTable(spec, client=self._client, now=clock.now)
