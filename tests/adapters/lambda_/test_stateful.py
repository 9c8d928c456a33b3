"""The users function on moto server: its table is DynamoDB, its outbox relayed from the
table's stream (publish, then delete), its HTTP routes write through a unit of work."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import orjson
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from adapters.aws.dynamodb import DynamoTable
from adapters.aws.provision import create_table
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import Context, Domain, Storage, Task
from bus.envelope import Envelope
from bus.storage import Key, TableSpec
from bus.storage.unit_of_work import UnitOfWork
from bus.topology import Topology
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users
from domains.users.contracts import UserCreated
from tctf.aws import up

from .conftest import (
    LAMBDA_GO,
    POWERTOOLS,
    SCHEDULED_EVENT,
    ItemReserved,
    LambdaContext,
    Published,
    body,
    sample,
)

REGION = "us-east-1"
_apps = itertools.count()
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _env(endpoint: str, app: str, **extra: str) -> dict[str, str]:
    return {
        "TCTF_DOMAIN": "users",
        "TCTF_TRANSPORT": "sns",
        "TCTF_APP": app,
        "TCTF_TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:{app}-events",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        **extra,
    }


@pytest.fixture
def app_name(moto_endpoint: str) -> str:
    """A fresh app, provisioned by `tctf up`: topic, queues, the users table with its stream."""
    name = f"lst{next(_apps)}"
    asyncio.run(up(moto_endpoint, "sns", [users, messaging], app=name))
    return name


@pytest.fixture
def users_app(moto_endpoint: str, app_name: str) -> Iterator[LambdaApp]:
    app = build(_env(moto_endpoint, app_name))
    yield app
    app.close()


def _dynamodb(endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)


def _envelope(user_id: str = "u1") -> Envelope:
    event = UserCreated(user_id=user_id, email=f"{user_id}@example.com", name="Ada")
    return Envelope(
        id=f"evt-{user_id}",
        source="users",
        type=event.type,
        time="2026-01-01T00:00:00.000Z",
        dataversion=event.version,
        correlationid="corr-u1",
        data=event,
    )


def _commit_to_outbox(
    endpoint: str,
    spec: TableSpec,
    envelope: Envelope,
    ordering_key: str = "USER#u1",
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Commit `envelope` with a real unit of work; the outbox item it wrote, as stored."""

    async def commit() -> dict[str, Any]:
        async with DynamoTable(spec, endpoint_url=endpoint, region_name=REGION) as table:
            async with UnitOfWork(table, now=now) as uow:
                uow.publish(envelope.encode(), ordering_key=ordering_key, event_id=envelope.id)
            page = await table.query(
                Key("PK").eq(f"OUTBOX#{ordering_key}") & Key("SK").begins_with("EVENT#"),
                consistent=True,
            )
        (item,) = page.items
        return item

    return asyncio.run(commit())


def _attribute_value(value: Any) -> Any:
    """DynamoDB JSON as a stream record carries it: binaries base64 encoded."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return base64.b64encode(value.value).decode()
    if isinstance(value, dict):
        return {k: _attribute_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attribute_value(v) for v in value]
    return value


def _image(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _attribute_value(_serializer.serialize(v)) for k, v in item.items()}


def _stream_event(endpoint: str, spec: TableSpec, items: Sequence[dict[str, Any]]) -> dict:  # type: ignore[type-arg]
    """A DynamoDB Streams event of INSERTs, in the shape of AWS's sample record."""
    stream_arn = _dynamodb(endpoint).describe_table(TableName=spec.name)["Table"]["LatestStreamArn"]
    template = sample(LAMBDA_GO / "dynamodb-event.json")["Records"][0]
    records = []
    for number, item in enumerate(items, start=1):
        record = json.loads(json.dumps(template))
        record["eventName"] = "INSERT"
        record["eventSourceARN"] = stream_arn
        change = record["dynamodb"]
        change["Keys"] = _image({"PK": item["PK"], "SK": item["SK"]})
        change["NewImage"] = _image(item)
        change["SequenceNumber"] = f"{number:021d}"
        change["StreamViewType"] = "NEW_IMAGE"
        records.append(record)
    return {"Records": records}


def _receive(endpoint: str, queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    messages: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    )
    return messages


def test_the_users_function_addresses_the_table_its_topology_names(
    users_app: LambdaApp, app_name: str
) -> None:
    table = users_app.table
    assert isinstance(table, DynamoTable)
    assert table.spec == Topology.from_domains([users], app=app_name).tables["users"]
    assert table.spec.name == f"{app_name}-users"


def test_a_stateful_function_records_what_it_handled_in_its_table_and_does_it_once(
    moto_endpoint: str, published: Published
) -> None:
    ledger = Domain("ledger", storage=Storage())
    calls: list[str] = []

    @ledger.on(ItemReserved)
    async def book(event: ItemReserved, ctx: Context) -> None:
        calls.append(event.sku)
        await ctx.table.put({"PK": f"SKU#{event.sku}", "SK": "BOOKED"})

    spec = Topology.from_domains([ledger], app=f"lst{next(_apps)}").tables["ledger"]
    asyncio.run(create_table(spec, endpoint_url=moto_endpoint, region_name=REGION))
    table = DynamoTable(spec, endpoint_url=moto_endpoint, region_name=REGION)
    app = LambdaApp(ledger, published, table=table)
    arn = f"arn:aws:sqs:{REGION}:123456789012:tctf-ledger-events"
    try:
        for message_id in ("m1", "m2"):  # the same envelope delivered twice
            record = {**sample(LAMBDA_GO / "sqs-event.json")["Records"][0], "eventSourceARN": arn}
            event = {"Records": [{**record, "messageId": message_id, "body": body("A-1")}]}
            assert app(event, LambdaContext()) == {"batchItemFailures": []}
        app._loop.run_until_complete(table.aclose())
    finally:
        app.close()

    assert calls == ["A-1"]
    scanned = _dynamodb(moto_endpoint).scan(TableName=spec.name, ConsistentRead=True)["Items"]
    partitions = sorted(i["PK"]["S"] for i in scanned)
    assert partitions[0].startswith("IDEMPOTENCY#") and partitions[1:] == ["SKU#A-1"]
    assert "expires_at" in scanned[[i["PK"]["S"] for i in scanned].index(partitions[0])]


def test_a_streamed_outbox_insert_is_published_then_deleted(
    moto_endpoint: str, app_name: str, users_app: LambdaApp
) -> None:
    spec = users_app.table.spec  # type: ignore[union-attr]
    envelope = _envelope()
    item = _commit_to_outbox(moto_endpoint, spec, envelope)
    key = _image({"PK": item["PK"], "SK": item["SK"]})
    assert "Item" in _dynamodb(moto_endpoint).get_item(TableName=spec.name, Key=key)

    response = users_app(_stream_event(moto_endpoint, spec, [item]), LambdaContext())

    assert response == {"batchItemFailures": []}
    (delivered,) = _receive(moto_endpoint, f"{app_name}-messaging_consumers-events")
    assert json.loads(delivered["Body"]) == json.loads(envelope.encode())
    gone = _dynamodb(moto_endpoint).get_item(TableName=spec.name, Key=key, ConsistentRead=True)
    assert "Item" not in gone


def test_a_scheduled_sweep_publishes_what_the_stream_left_behind_and_deletes_it(
    moto_endpoint: str, app_name: str, users_app: LambdaApp
) -> None:
    spec = users_app.table.spec  # type: ignore[union-attr]
    hour_ago = time.time() - 3600
    old = _commit_to_outbox(moto_endpoint, spec, _envelope("u1"), now=lambda: hour_ago)
    young = _commit_to_outbox(moto_endpoint, spec, _envelope("u2"), ordering_key="USER#u2")

    assert users_app(sample(SCHEDULED_EVENT), LambdaContext()) is None

    (delivered,) = _receive(moto_endpoint, f"{app_name}-messaging_consumers-events")
    assert json.loads(delivered["Body"])["id"] == "evt-u1"
    assert not _stored(moto_endpoint, spec, old)
    assert _stored(moto_endpoint, spec, young)  # younger than the sweep age: the stream's


def _stored(endpoint: str, spec: TableSpec, item: dict[str, Any]) -> bool:
    key = _image({"PK": item["PK"], "SK": item["SK"]})
    found = _dynamodb(endpoint).get_item(TableName=spec.name, Key=key, ConsistentRead=True)
    return "Item" in found


class Refusing:
    """A publisher that cannot reach SNS."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        raise ConnectionError("SNS unreachable")

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        raise ConnectionError("SQS unreachable")


def test_an_outbox_item_that_could_not_be_published_is_kept_and_retried(
    moto_endpoint: str, app_name: str
) -> None:
    spec = Topology.from_domains([users], app=app_name).tables["users"]
    item = _commit_to_outbox(moto_endpoint, spec, _envelope())
    table = DynamoTable(spec, endpoint_url=moto_endpoint, region_name=REGION)
    app = LambdaApp(users, Refusing(), table=table)
    try:
        event = _stream_event(moto_endpoint, spec, [item])
        response = app(event, LambdaContext())
        app._loop.run_until_complete(table.aclose())
    finally:
        app.close()

    (record,) = event["Records"]
    assert response == {
        "batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]
    }
    key = _image({"PK": item["PK"], "SK": item["SK"]})
    assert "Item" in _dynamodb(moto_endpoint).get_item(TableName=spec.name, Key=key)


def test_http_sign_up_writes_the_user_and_its_outbox_item_to_a_named_table(
    moto_endpoint: str,
) -> None:
    app_name = f"lst{next(_apps)}"
    table_name = f"{app_name}-users-blue"
    app = build(_env(moto_endpoint, app_name, TCTF_PROVISION="1", TCTF_TABLE_NAME=table_name))
    try:
        event = sample(POWERTOOLS / "apiGatewayProxyV2Event.json")
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/users"
        event["requestContext"]["http"]["method"] = "POST"
        event["isBase64Encoded"] = False
        event["body"] = orjson.dumps({"email": "Ada@Example.com", "name": "Ada"}).decode()
        response = app(event, LambdaContext())
    finally:
        app.close()

    assert response is not None and response["statusCode"] == 201, response
    user_id = json.loads(response["body"])["user_id"]
    dynamodb = _dynamodb(moto_endpoint)
    described = dynamodb.describe_table(TableName=table_name)["Table"]
    assert described["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    scanned = dynamodb.scan(TableName=table_name, ConsistentRead=True)["Items"]
    keys = {(i["PK"]["S"], i["SK"]["S"]) for i in scanned}
    assert (f"USER#{user_id}", "PROFILE") in keys
    (outbox,) = [i for i in scanned if i["SK"]["S"].startswith("EVENT#")]
    assert Envelope.decode(outbox["body"]["B"]).data_dict()["user_id"] == user_id


def test_a_malformed_outbox_item_is_parked_in_the_outbox_dlq_and_the_rest_is_published(
    moto_endpoint: str, app_name: str, users_app: LambdaApp
) -> None:
    # The outbox has a DLQ of its own, apart from the events queue's: what lands there is an
    # item the function could not publish, not a record it could not handle.
    outbox_dlq = Topology.from_domains([users], app=app_name).outbox_dlqs["users"]
    assert outbox_dlq == f"{app_name}-users-outbox-dlq"
    spec = users_app.table.spec  # type: ignore[union-attr]
    bad = {"PK": "OUTBOX#USER#u0", "SK": f"EVENT#{0:020d}", "body": b"{not json"}
    dynamodb = _dynamodb(moto_endpoint)
    dynamodb.put_item(
        TableName=spec.name, Item={k: _serializer.serialize(v) for k, v in bad.items()}
    )
    good = _commit_to_outbox(moto_endpoint, spec, _envelope())
    event = _stream_event(moto_endpoint, spec, [bad, good])

    response = users_app(event, LambdaContext())

    assert response == {"batchItemFailures": []}
    (parked,) = _receive(moto_endpoint, f"{app_name}-users-outbox-dlq")
    assert json.loads(parked["Body"])["PK"] == "OUTBOX#USER#u0"
    # Parked, it leaves the table as a published item does: the sweep must not find it.
    key = {"PK": {"S": bad["PK"]}, "SK": {"S": bad["SK"]}}
    assert "Item" not in dynamodb.get_item(TableName=spec.name, Key=key, ConsistentRead=True)
    (delivered,) = _receive(moto_endpoint, f"{app_name}-messaging_consumers-events")
    assert json.loads(delivered["Body"])["id"] == "evt-u1"


def test_a_provisioning_function_creates_its_outbox_dlq_at_init(moto_endpoint: str) -> None:
    app_name = f"lst{next(_apps)}"
    app = build(_env(moto_endpoint, app_name, TCTF_PROVISION="1"))
    app.close()

    assert app.outbox_dead_letter_queue == f"{app_name}-users-outbox-dlq"
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    url = sqs.get_queue_url(QueueName=f"{app_name}-users-outbox-dlq")["QueueUrl"]
    retention = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    assert retention["Attributes"]["MessageRetentionPeriod"] == str(14 * 24 * 3600)


class IssueReceipt(Task):
    type = "LST_ISSUE_RECEIPT"
    domain = "receipts"
    sku: str


def test_a_handler_failing_after_its_commit_is_not_run_again_and_its_task_is_relayed(
    moto_endpoint: str, published: Published
) -> None:
    ledger = Domain("ledger", storage=Storage(), sends=[IssueReceipt])
    failures = [2]

    @ledger.on(ItemReserved)
    async def book(event: ItemReserved, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": f"SKU#{event.sku}", "SK": "STOCK"}, add={"reserved": 10})
            uow.send(IssueReceipt(sku=event.sku))
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("connection reset after the commit")

    spec = Topology.from_domains([ledger], app=f"lst{next(_apps)}").tables["ledger"]
    asyncio.run(
        create_table(spec, endpoint_url=moto_endpoint, region_name=REGION, stream_view="NEW_IMAGE")
    )
    table = DynamoTable(spec, endpoint_url=moto_endpoint, region_name=REGION)
    app = LambdaApp(ledger, published, table=table)
    arn = f"arn:aws:sqs:{REGION}:123456789012:tctf-ledger-events"
    record = {**sample(LAMBDA_GO / "sqs-event.json")["Records"][0], "eventSourceARN": arn}
    event = {"Records": [{**record, "messageId": "m1", "body": body("A-1")}]}
    try:
        first = app(event, LambdaContext())
        again = app(event, LambdaContext())  # redelivered after the visibility timeout
        scanned = _dynamodb(moto_endpoint).scan(TableName=spec.name, ConsistentRead=True)
        [outbox] = [
            {name: _deserializer.deserialize(value) for name, value in item.items()}
            for item in scanned["Items"]
            if item["SK"]["S"].startswith("EVENT#")
        ]
        relayed = app(_stream_event(moto_endpoint, spec, [outbox]), LambdaContext())
        app._loop.run_until_complete(table.aclose())
    finally:
        app.close()

    assert first == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert again == {"batchItemFailures": []}
    assert relayed == {"batchItemFailures": []}
    stock = _dynamodb(moto_endpoint).get_item(
        TableName=spec.name, Key=_image({"PK": "SKU#A-1", "SK": "STOCK"}), ConsistentRead=True
    )
    assert stock["Item"]["reserved"] == {"N": "10"}
    [task] = published.tasks
    assert task.type == "LST_ISSUE_RECEIPT" and getattr(task.data, "domain", None) == "receipts"
    assert published.events == []
