"""`DynamoTable`: the storage port on DynamoDB through aioboto3, and `create_table`.

Conditions from `bus.storage.conditions` are translated 1:1 into boto3's `Key`/`Attr` and
rendered by boto3's own `ConditionExpressionBuilder`; items are (de)serialised with boto3's
`TypeSerializer`/`TypeDeserializer` after the port's normalisation, so reads match
`InMemoryTable` value for value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.conditions import Attr as BotoAttr
from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.conditions import Key as BotoKey
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from adapters.aws.session import AwsClients, AwsSettings
from bus.storage.conditions import (
    And,
    AttributeType,
    BeginsWith,
    Between,
    Comparison,
    Condition,
    Contains,
    Exists,
    In,
    Not,
    NotExists,
    Or,
    matches,
)
from bus.storage.errors import (
    CancellationReason,
    ConditionFailed,
    InvalidRequest,
    ItemCollectionTooLarge,
    ItemTooLarge,
    StorageError,
    TableNotFound,
    TransactionCanceled,
    TransactionTooLarge,
)
from bus.storage.items import (
    Item,
    check_item,
    decode_cursor,
    encode_cursor,
    key_of,
    normalize_item,
    normalize_value,
)
from bus.storage.spec import KeyAttribute, TableSpec
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

__all__ = ["DynamoTable", "DynamoTables", "StreamView", "create_table"]

#: What a table's stream records carry; the outbox relay needs NEW_IMAGE (or both images).
StreamView = Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY", "OLD_IMAGE"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


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
        await create_table(self._spec, client=await self._dynamodb())

    async def aclose(self) -> None:
        """Close the client this table created, if any."""
        if self._owned is not None:
            owned, self._owned, self._client = self._owned, None, None
            await owned.aclose()

    async def get(self, key: Mapping[str, Any], *, consistent: bool = False) -> Item | None:
        request = {
            "TableName": self._spec.name,
            "Key": _serialize(key_of(self._spec, key, exact=True)),
            "ConsistentRead": consistent,
        }
        response = await self._call("get_item", request)
        if "Item" not in response:
            return None
        item = _deserialize(response["Item"])
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
        return _deserialize(response.get("Attributes", {}))

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
        expressions = _Expressions()
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
            request["ExclusiveStartKey"] = _serialize(decode_cursor(cursor))
        response = await self._call("query", {**request, **expressions.placeholders()})
        last = response.get("LastEvaluatedKey")
        return Page(
            [_deserialize(item) for item in response.get("Items", [])],
            None if last is None else encode_cursor(_deserialize(last)),
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
        return {"Item": _serialize(item), **_condition(operation.condition)}

    def _keyed(self, operation: Delete | ConditionCheck) -> dict[str, Any]:
        key = _serialize(key_of(self._spec, operation.key, exact=True))
        return {"Key": key, **_condition(operation.condition)}

    def _update(self, operation: Update) -> dict[str, Any]:
        check_update(self._spec, operation)
        key = key_of(self._spec, operation.key, exact=True)
        changed = normalize_item({**operation.set, **operation.add})
        check_item(self._spec, {**key, **changed})
        expressions = _Expressions()
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
        request: dict[str, Any] = {"Key": _serialize(key)}
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


class _Expressions:
    """Placeholders for one request: boto3 renders conditions, we render update clauses."""

    def __init__(self) -> None:
        self._builder = ConditionExpressionBuilder()
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}

    def add(self, condition: Condition, *, is_key: bool = False) -> str:
        built = self._builder.build_expression(to_boto(condition, is_key), is_key_condition=is_key)
        self._names.update(built.attribute_name_placeholders)
        self._values.update(_serialize(built.attribute_value_placeholders))
        return str(built.condition_expression)

    def name(self, name: str) -> str:
        placeholder = f"#u{len(self._names)}"
        self._names[placeholder] = name
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":u{len(self._values)}"
        self._values[placeholder] = _serializer.serialize(value)
        return placeholder

    def placeholders(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._names:
            out["ExpressionAttributeNames"] = self._names
        if self._values:
            out["ExpressionAttributeValues"] = self._values
        return out


def to_boto(condition: Condition, is_key: bool = False) -> ConditionBase:
    """The boto3 condition equal to one of ours (`Key` for key conditions, else `Attr`)."""
    match condition:
        case And(left, right):
            return to_boto(left, is_key) & to_boto(right, is_key)
        case Or(left, right):
            return to_boto(left) | to_boto(right)
        case Not(inner):
            return ~to_boto(inner)
    path: str = condition.path  # type: ignore[attr-defined]
    attribute = BotoKey(path) if is_key else BotoAttr(path)
    match condition:
        case Comparison(_, operator, value):
            method = {"=": "eq", "<>": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
            return getattr(attribute, method[operator])(value)
        case Between(_, low, high):
            return attribute.between(low, high)
        case BeginsWith(_, prefix):
            return attribute.begins_with(prefix)
        case In(_, values):
            return attribute.is_in(list(values))
        case Contains(_, value):
            return attribute.contains(value)
        case Exists():
            return attribute.exists()
        case NotExists():
            return attribute.not_exists()
        case AttributeType(_, type_):
            return attribute.attribute_type(type_)
    raise InvalidRequest(f"not a condition: {condition!r}")


def _condition(condition: Condition | None) -> dict[str, Any]:
    if condition is None:
        return {}
    expressions = _Expressions()
    return {"ConditionExpression": expressions.add(condition), **expressions.placeholders()}


def _serialize(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(normalize_value(v)) for name, v in values.items()}


def _deserialize(values: Mapping[str, Any]) -> Item:
    return {
        name: normalize_value(_plain(_deserializer.deserialize(v))) for name, v in values.items()
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {name: _plain(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    if isinstance(value, set):
        return {_plain(inner) for inner in value}
    return value


def storage_error(error: ClientError) -> StorageError:
    """Our error for a DynamoDB error response."""
    code = error.response.get("Error", {}).get("Code", "")
    message = str(error.response.get("Error", {}).get("Message", error))
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(f"the condition was false; nothing was written ({message})")
    if code == "TransactionCanceledException":
        reasons = [
            CancellationReason(
                None if r.get("Code") in (None, "None") else r["Code"], r.get("Message")
            )
            for r in error.response.get("CancellationReasons", [])
        ]
        if any(_is_transaction_size_message(r.message or "") for r in reasons):
            return TransactionTooLarge(f"the transaction's items are over 4 MB ({message})")
        if any(_is_size_message(r.message or "") for r in reasons):
            return ItemTooLarge(f"an item in the transaction is over 400 KB ({message})")
        return TransactionCanceled(reasons)
    if code == "ItemCollectionSizeLimitExceededException":
        return ItemCollectionTooLarge(message)
    if code == "ResourceNotFoundException":
        return TableNotFound(message)
    if code == "ValidationException":
        if _is_transaction_size_message(message):
            return TransactionTooLarge(f"the transaction's items are over 4 MB ({message})")
        if _is_size_message(message):
            return ItemTooLarge(f"item over DynamoDB's 400 KB limit ({message})")
        return InvalidRequest(message)
    return StorageError(f"DynamoDB {code}: {message}")


def _is_size_message(message: str) -> bool:
    return "size" in message.lower() and "exceeded" in message.lower()


def _is_transaction_size_message(message: str) -> bool:
    """DynamoDB's refusal of a transaction over 4 MB. Its wording is not documented, so this
    matches what any wording would say: a transaction, and a size or the 4 MB."""
    lowered = message.lower()
    return "transaction" in lowered and ("size" in lowered or "4 mb" in lowered)


def table_definition(spec: TableSpec, *, stream_view: StreamView | None = None) -> dict[str, Any]:
    """The CreateTable request for `spec` (on-demand billing), with a stream of
    `stream_view` records when given."""
    attributes: dict[str, str] = {}
    for attribute in (*spec.key_attributes, *(a for i in spec.indexes for a in i.key_attributes)):
        attributes[attribute.name] = attribute.type.value
    definition: dict[str, Any] = {
        "TableName": spec.name,
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in attributes.items()
        ],
        "KeySchema": _key_schema(spec.key_attributes),
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.key_attributes),
                "Projection": {
                    "ProjectionType": index.projection.value,
                    **(
                        {"NonKeyAttributes": list(index.non_key_attributes)}
                        if index.non_key_attributes
                        else {}
                    ),
                },
            }
            for index in spec.indexes
        ]
    if stream_view is not None:
        definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
    return definition


def _key_schema(attributes: tuple[KeyAttribute, ...]) -> list[dict[str, str]]:
    kinds = ("HASH", "RANGE")
    return [
        {"AttributeName": a.name, "KeyType": kind}
        for a, kind in zip(attributes, kinds, strict=False)
    ]


async def create_table(
    spec: TableSpec,
    *,
    client: Any = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    stream_view: StreamView | None = None,
) -> None:
    """Create `spec`'s table and enable its TTL; a table that already exists is kept.

    `stream_view`: the table's DynamoDB stream must carry these records (the outbox relay
    reads NEW_IMAGE); an existing table without a stream gets one. A stream of another kind
    cannot be changed in place and raises `StorageError`. `client` may be an aiobotocore
    client or a botocore one run in threads (`adapters.aws.session.ThreadedClient`).
    """
    async with _client_scope(client, endpoint_url, region_name) as dynamodb:
        try:
            await dynamodb.create_table(**table_definition(spec, stream_view=stream_view))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise storage_error(error) from error
        table = await _wait_until_active(dynamodb, spec.name)
        if stream_view is not None and _needs_stream(spec.name, table, stream_view):
            await dynamodb.update_table(
                TableName=spec.name,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": stream_view},
            )
            await _wait_until_active(dynamodb, spec.name)
        if spec.ttl_attribute is not None:
            described = await dynamodb.describe_time_to_live(TableName=spec.name)
            status = described["TimeToLiveDescription"]["TimeToLiveStatus"]
            if status not in ("ENABLED", "ENABLING"):
                await dynamodb.update_time_to_live(
                    TableName=spec.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )


#: Stream views that carry at least what another view needs.
_CARRIES: dict[str, frozenset[str]] = {
    "NEW_IMAGE": frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"}),
    "OLD_IMAGE": frozenset({"OLD_IMAGE", "NEW_AND_OLD_IMAGES"}),
    "NEW_AND_OLD_IMAGES": frozenset({"NEW_AND_OLD_IMAGES"}),
    "KEYS_ONLY": frozenset({"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"}),
}


def _needs_stream(name: str, table: Mapping[str, Any], view: StreamView) -> bool:
    """Whether the described table still needs its stream enabled."""
    current = table.get("StreamSpecification") or {}
    if not current.get("StreamEnabled"):
        return True
    if current.get("StreamViewType") in _CARRIES[view]:
        return False
    raise StorageError(
        f"table {name} streams {current.get('StreamViewType')} records, not {view}: a "
        "stream's view cannot change in place; disable the stream, then provision again"
    )


async def _wait_until_active(
    dynamodb: Any, name: str, *, delay: float = 1.0, attempts: int = 120
) -> dict[str, Any]:
    """Describe the table until it and its indexes are ACTIVE (moto: at once).

    Polls `DescribeTable` itself rather than using boto's waiter, so that it works with an
    aiobotocore client and a threaded botocore client alike.
    """
    for attempt in range(attempts):
        table: dict[str, Any] = (await dynamodb.describe_table(TableName=name))["Table"]
        indexes = table.get("GlobalSecondaryIndexes") or []
        if table.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
        ):
            return table
        if attempt + 1 < attempts:
            await asyncio.sleep(delay)
    raise StorageError(f"table {name} is not ACTIVE after {attempts * delay:.0f} s")


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
            raise RuntimeError("DynamoTables makes tables only inside `async with`")
        return DynamoTable(spec, client=self._client, now=clock.now)


@asynccontextmanager
async def _client_scope(client: Any, endpoint_url: str | None, region_name: str | None) -> Any:
    if client is not None:
        yield client
        return
    import aioboto3

    session = aioboto3.Session()
    async with session.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region_name
    ) as owned:
        yield owned
