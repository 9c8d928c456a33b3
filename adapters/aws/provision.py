"""Creating, or finding, the AWS resources a `Topology` describes.

`provision` is idempotent: run it twice and the second run changes nothing. Queues and DLQs
with redrive policies, then the SNS topic with one filtered, raw-delivery subscription per
events queue, or the EventBridge bus with one rule per events queue; queue policies let
only those send. A subscription or rule that cannot deliver to its queue sends the message
to the queue's DLQ rather than dropping it. Each domain's table (`Topology.tables`) is
created with its TTL and a NEW_IMAGE stream, which drives the outbox relay in production,
and gets the DLQ its outbox items are parked in (`Topology.outbox_dlqs`). `discover` finds
the same resources in an account provisioned elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from adapters.aws.dynamodb_errors import storage_error
from adapters.aws.errors import NotProvisioned
from adapters.aws.session import AwsClients
from bus.storage.errors import StorageError
from bus.topology import QueueSpec, Topology

if TYPE_CHECKING:
    from bus.storage.spec import KeyAttribute, TableSpec

Kind = Literal["sns", "eventbridge"]

#: What a table's stream carries: the outbox relay publishes each new outbox item's body.
TABLE_STREAM_VIEW: Literal["NEW_IMAGE"] = "NEW_IMAGE"

#: SQS's longest retention: a dead letter waits two weeks for someone to look at it.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600

#: How long EventBridge keeps trying to deliver to a queue before the event goes to the
#: target's DLQ (AWS's defaults, stated so that a run makes them explicit).
TARGET_RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 24 * 3600}


@dataclass(frozen=True, slots=True)
class Resources:
    """What the transports address: queue URLs and ARNs by queue name, the topic or bus."""

    queue_urls: Mapping[str, str]
    queue_arns: Mapping[str, str]
    topic_arn: str | None = None
    event_bus: str | None = None


async def provision(
    topology: Topology,
    clients: AwsClients,
    kind: Kind,
    tables: Iterable[TableSpec] = (),
) -> Resources:
    """Create what is missing and bring what exists in line with the topology.

    Every table of `topology.tables`, and any further `tables`, is created with
    `create_table` (TTL enabled, a NEW_IMAGE stream); an existing
    table is kept, and given its stream if it has none.
    """
    sqs = clients.sqs
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for spec in topology.queues:
        for name in (spec.dlq, spec.name):
            urls[name] = (await sqs.create_queue(QueueName=name))["QueueUrl"]
            arns[name] = await _queue_arn(sqs, urls[name])
    for name in topology.outbox_dlqs.values():
        urls[name] = await create_dead_letter_queue(sqs, name)
        arns[name] = await _queue_arn(sqs, urls[name])
    # Who may send to each events queue and its DLQ: the topic, or the rule feeding it.
    senders: dict[str, tuple[str, str]] = {}
    events = [spec for spec in topology.queues if spec.purpose == "events"]
    if kind == "sns":
        topic_arn = (await clients.sns.create_topic(Name=topology.topic))["TopicArn"]
        senders = {spec.name: ("sns.amazonaws.com", topic_arn) for spec in events}
        resources = Resources(urls, arns, topic_arn=topic_arn)
    else:
        await _create_event_bus(clients.events, topology.event_bus)
        for spec in events:
            rule_arn = await _put_rule(
                clients.events, topology, spec, arns[spec.name], arns[spec.dlq]
            )
            senders[spec.name] = ("events.amazonaws.com", rule_arn)
        resources = Resources(urls, arns, event_bus=topology.event_bus)
    for spec in topology.queues:
        dlq_attributes = {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
        attributes = _attributes(spec, arns)
        if spec.name in senders:
            service, source_arn = senders[spec.name]
            attributes["Policy"] = await _policy(
                sqs, urls[spec.name], arns[spec.name], service, source_arn
            )
            # What the subscription or rule could not deliver goes to the DLQ instead.
            dlq_attributes["Policy"] = await _policy(
                sqs, urls[spec.dlq], arns[spec.dlq], service, source_arn
            )
        await sqs.set_queue_attributes(QueueUrl=urls[spec.dlq], Attributes=dlq_attributes)
        # One call: moto (unlike SQS) drops a queue's policy when a call leaves it out.
        await sqs.set_queue_attributes(QueueUrl=urls[spec.name], Attributes=attributes)
    if kind == "sns":
        for spec in events:
            await _subscribe(clients.sns, topic_arn, arns, topology, spec)
    table_specs = {table.name: table for table in (*topology.tables.values(), *tables)}
    idempotency = topology.idempotency_tables.values()
    if table_specs or idempotency:
        dynamodb = await clients.client("dynamodb")
        for table in table_specs.values():
            await create_table(table, client=dynamodb, stream_view=TABLE_STREAM_VIEW)
        for table in idempotency:  # no outbox, so no stream
            await create_table(table, client=dynamodb)
    return resources


async def discover(topology: Topology, clients: AwsClients, kind: Kind) -> Resources:
    """Look up resources created elsewhere (infrastructure code); create nothing."""
    sqs = clients.sqs
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    names = [n for spec in topology.queues for n in (spec.name, spec.dlq)]
    for name in (*names, *topology.outbox_dlqs.values()):
        try:
            urls[name] = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
        except ClientError as error:
            raise NotProvisioned(
                f"queue {name} does not exist: run `tctf up` or deploy the stacks first"
            ) from error
        arns[name] = await _queue_arn(sqs, urls[name])
    if kind == "eventbridge":
        return Resources(urls, arns, event_bus=topology.event_bus)
    # The topic lives in the queues' account and region: its ARN follows from theirs.
    sample = next(iter(arns.values()), None)
    if sample is None:
        raise NotProvisioned("the topology has no queues, so there is nothing to discover")
    partition, _, region, account = sample.split(":")[1:5]
    topic_arn = f"arn:{partition}:sns:{region}:{account}:{topology.topic}"
    return Resources(urls, arns, topic_arn=topic_arn)


def rule_name(queue: str) -> str:
    """The EventBridge rule feeding a queue: named for it, shortened to the 64-character limit."""
    if len(queue) <= 64:
        return queue
    digest = hashlib.sha256(queue.encode()).hexdigest()[:8]
    return f"{queue[:55]}-{digest}"


async def create_dead_letter_queue(sqs: Any, name: str) -> str:
    """Create (or keep) a DLQ holding its messages for SQS's longest retention; its URL."""
    url: str = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    await sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )
    return url


async def _queue_arn(sqs: Any, url: str) -> str:
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = response["Attributes"]["QueueArn"]
    return arn


def _attributes(spec: QueueSpec, arns: Mapping[str, str]) -> dict[str, str]:
    redrive = {"deadLetterTargetArn": arns[spec.dlq], "maxReceiveCount": spec.max_receive_count}
    return {
        # SQS counts visibility in whole seconds; rounding up never shortens a handler's time.
        "VisibilityTimeout": str(math.ceil(spec.visibility_timeout)),
        "RedrivePolicy": json.dumps(redrive),
    }


async def _policy(sqs: Any, url: str, queue_arn: str, service: str, source_arn: str) -> str:
    """The queue policy letting `service` send from `source_arn`; statements others (or the
    other transport) put in the policy stay."""
    sid = f"tctf-{service.split('.')[0]}"
    statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
    }
    current = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    policy_text = current.get("Attributes", {}).get("Policy")
    policy: dict[str, Any] = json.loads(policy_text) if policy_text else {"Version": "2012-10-17"}
    others = [s for s in policy.get("Statement", []) if s.get("Sid") != sid]
    policy["Statement"] = [*others, statement]
    return json.dumps(policy)


async def _subscribe(
    sns: Any, topic_arn: str, arns: Mapping[str, str], topology: Topology, spec: QueueSpec
) -> None:
    queue_arn = arns[spec.name]
    policy, scope = topology.filter_policy(spec.name)
    wanted = {
        "RawMessageDelivery": "true",
        "FilterPolicyScope": scope,
        "FilterPolicy": json.dumps(policy, sort_keys=True),
        # Without it SNS discards a message it cannot deliver (the queue refuses it).
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arns[spec.dlq]}),
    }
    existing = await _subscription_to(sns, topic_arn, queue_arn)
    if existing is None:
        await sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=wanted,
            ReturnSubscriptionArn=True,
        )
        return
    current = (await sns.get_subscription_attributes(SubscriptionArn=existing))["Attributes"]
    # The scope first: the policy is validated against the scope in force.
    for name in ("RawMessageDelivery", "FilterPolicyScope", "FilterPolicy", "RedrivePolicy"):
        if _differs(name, current.get(name), wanted[name]):
            await sns.set_subscription_attributes(
                SubscriptionArn=existing, AttributeName=name, AttributeValue=wanted[name]
            )


def _differs(name: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return True
    if name in ("FilterPolicy", "RedrivePolicy"):
        return bool(json.loads(current) != json.loads(wanted))
    return current.lower() != wanted.lower()


async def _subscription_to(sns: Any, topic_arn: str, queue_arn: str) -> str | None:
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    async for page in paginator.paginate(TopicArn=topic_arn):
        for sub in page.get("Subscriptions", ()):
            if sub.get("Endpoint") == queue_arn and sub.get("Protocol") == "sqs":
                arn: str = sub["SubscriptionArn"]
                return arn
    return None


async def _create_event_bus(events: Any, name: str) -> None:
    try:
        await events.create_event_bus(Name=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise


async def _put_rule(
    events: Any, topology: Topology, spec: QueueSpec, queue_arn: str, dlq_arn: str
) -> str:
    name = rule_name(spec.name)
    rule = await events.put_rule(
        Name=name,
        EventBusName=topology.event_bus,
        EventPattern=json.dumps(topology.event_pattern(spec.name), sort_keys=True),
        State="ENABLED",
        Description=f"events for domain {spec.domain}",
    )
    await events.put_targets(
        Rule=name,
        EventBusName=topology.event_bus,
        Targets=[
            {
                "Id": "queue",
                "Arn": queue_arn,
                # Without it EventBridge drops the event once its retries run out.
                "DeadLetterConfig": {"Arn": dlq_arn},
                "RetryPolicy": TARGET_RETRY_POLICY,
            }
        ],
    )
    arn: str = rule["RuleArn"]
    return arn


#: What a table's stream records carry; the outbox relay needs NEW_IMAGE (or both images).
StreamView = Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY", "OLD_IMAGE"]


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


@asynccontextmanager
async def _client_scope(
    client: Any, endpoint_url: str | None, region_name: str | None
) -> AsyncIterator[Any]:
    if client is not None:
        yield client
        return
    import aioboto3

    session = aioboto3.Session()
    async with session.client(
        "dynamodb", endpoint_url=endpoint_url, region_name=region_name
    ) as owned:
        yield owned
