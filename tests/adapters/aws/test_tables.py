"""Domain tables on DynamoDB: `tctf up` creates them with their outbox stream, and `tctf run
--aws` keeps the domains' state, idempotency records and outbox in them."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from adapters.aws.provision import create_table, provision
from adapters.aws.session import AwsClients, AwsSettings
from bus import Context, Domain, Storage
from bus.http import HttpRequest
from bus.storage import StorageError
from bus.topology import Topology
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users
from domains.users.contracts import UserCreated
from tctf.aws import up

from .conftest import DeliveryLog, aws_platform

NEW_IMAGE = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}


async def describe(settings: AwsSettings, name: str) -> dict[str, Any]:
    """The table as DynamoDB describes it, with its TTL."""
    async with AwsClients(settings, "dynamodb") as clients:
        table: dict[str, Any] = (await clients.dynamodb.describe_table(TableName=name))["Table"]
        ttl = await clients.dynamodb.describe_time_to_live(TableName=name)
    return {**table, "TTL": ttl["TimeToLiveDescription"]}


async def items(settings: AwsSettings, name: str) -> list[dict[str, Any]]:
    """Every item of a table, each attribute as its plain string (or bytes) value."""
    async with AwsClients(settings, "dynamodb") as clients:
        scanned = await clients.dynamodb.scan(TableName=name, ConsistentRead=True)
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in scanned["Items"]]


async def test_up_creates_each_stateful_domains_table_with_its_outbox_stream_once(
    moto_endpoint: str, settings: AwsSettings, app: str, greeter: Domain
) -> None:
    await up(moto_endpoint, "sns", [users, greeter], app=app)
    first = await describe(settings, f"{app}-users")
    await up(moto_endpoint, "sns", [users, greeter], app=app)
    again = await describe(settings, f"{app}-users")

    assert first["StreamSpecification"] == NEW_IMAGE
    assert first["LatestStreamArn"].startswith(first["TableArn"] + "/stream/")
    assert [(k["AttributeName"], k["KeyType"]) for k in first["KeySchema"]] == [
        ("PK", "HASH"),
        ("SK", "RANGE"),
    ]
    (outbox,) = first["GlobalSecondaryIndexes"]
    assert outbox["IndexName"] == "outbox"
    assert outbox["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert first["TTL"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # The second run changed nothing: not even a new stream.
    assert again == first
    async with AwsClients(settings, "dynamodb") as clients:
        # Every page: ListTables answers 100 names at most, and the endpoint is the session's.
        pages = clients.dynamodb.get_paginator("list_tables").paginate()
        names = [name async for page in pages for name in page["TableNames"]]
    # greeter keeps no state but handles events: its idempotency table (decision 0010).
    assert sorted(n for n in names if n.startswith(f"{app}-")) == [
        f"{app}-greeter-idempotency",
        f"{app}-users",
    ]


async def test_provisioning_gives_an_existing_table_without_a_stream_its_stream(
    settings: AwsSettings, app: str
) -> None:
    topology = Topology.from_domains([users], app=app)
    spec = topology.tables["users"]
    async with AwsClients(settings, "sqs", "sns") as clients:
        await create_table(spec, client=await clients.client("dynamodb"))
        assert "StreamSpecification" not in await describe(settings, spec.name)

        await provision(topology, clients, "sns")

    assert (await describe(settings, spec.name))["StreamSpecification"] == NEW_IMAGE


async def test_a_stream_of_another_view_is_named_not_silently_kept(
    settings: AwsSettings, app: str
) -> None:
    spec = Topology.from_domains([users], app=app).tables["users"]
    async with AwsClients(settings, "dynamodb") as clients:
        await create_table(spec, client=clients.dynamodb, stream_view="KEYS_ONLY")
        with pytest.raises(StorageError, match="streams KEYS_ONLY records, not NEW_IMAGE"):
            await create_table(spec, client=clients.dynamodb, stream_view="NEW_IMAGE")
        # A stream carrying more than the new image is enough.
        other = Topology.from_domains([users], app=f"{app}b").tables["users"]
        await create_table(other, client=clients.dynamodb, stream_view="NEW_AND_OLD_IMAGES")
        await create_table(other, client=clients.dynamodb, stream_view="NEW_IMAGE")


audit = Domain("audit", storage=Storage())


@audit.on(UserCreated)
async def remember(event: UserCreated, ctx: Context) -> None:
    await ctx.table.put({"PK": f"SEEN#{event.user_id}", "SK": "SEEN", "email": event.email})


async def test_run_aws_keeps_state_in_dynamodb_and_relays_the_outbox_through_sns(
    moto_endpoint: str, settings: AwsSettings, app: str, deliveries: DeliveryLog
) -> None:
    expected = {
        "messaging_consumers.welcome_new_user",
        "messaging_consumers.deliver",
        "audit.remember",
    }
    async with aws_platform([users, messaging, audit], moto_endpoint, "sns", app) as platform:
        body = orjson.dumps({"email": "Ada@Example.com", "name": "Ada"})
        created = await platform.router.handle(HttpRequest("POST", "/users", body=body))
        assert created.status == 201, created.body
        with anyio.fail_after(20):
            await deliveries.wait_handled(expected)
        user_id = created.json()["user_id"]

    assert sorted(deliveries.handled()) == sorted(expected)  # each exactly once
    stored = {(i["PK"], i["SK"]): i for i in await items(settings, f"{app}-users")}
    assert stored[(f"USER#{user_id}", "PROFILE")]["email"] == "ada@example.com"
    assert stored[(f"USER#{user_id}", "PROFILE")]["name"] == "Ada"
    assert stored[("EMAIL#ada@example.com", "EMAIL")]["user_id"] == user_id
    seen = await items(settings, f"{app}-audit")
    assert [i["email"] for i in seen if i["PK"] == f"SEEN#{user_id}"] == ["ada@example.com"]
    # The audit domain's idempotency record lives in its own table, with a TTL.
    (record,) = [i for i in seen if i["PK"].startswith("IDEMPOTENCY#")]
    assert "expires_at" in record


def test_dynamo_tables_makes_no_table_before_its_client_is_open(settings: AwsSettings) -> None:
    from adapters.aws.dynamodb import DynamoTables
    from bus import ConfigurationError
    from bus.clock import ManualClock

    spec = Topology.from_domains([users]).tables["users"]
    with pytest.raises(ConfigurationError, match="only inside `async with DynamoTables"):
        DynamoTables(settings)(spec, ManualClock())
