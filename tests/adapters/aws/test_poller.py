"""The poller hands batches over as Lambda does and deletes only what the handler completed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import anyio
import pytest

from adapters.aws.dynamodb import DynamoTable
from adapters.aws.poller import SqsPoller, failed_message_ids
from adapters.aws.provision import create_table
from adapters.aws.session import AwsClients, AwsSettings
from adapters.aws.sns_sqs import sns_sqs
from adapters.lambda_.sqs import sqs_batch_handler
from bus import Context, Domain, DomainSettings, Event
from bus.assembly import Services, assemble
from bus.clock import SystemClock
from bus.envelope import Envelope
from bus.testing import Harness
from bus.topology import QueueSpec, Topology

SPEC = QueueSpec(
    name="",
    domain="billing",
    purpose="events",
    dlq="",
    visibility_timeout=30.0,
    max_receive_count=3,
    batch_size=10,
    concurrency=1,
    message_types=("ORDER_PLACED",),
)
#: Keys of a record in Lambda's SQS event, in Lambda's order (AWS's sqsEvent.json sample).
RECORD_KEYS = [
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
]


@pytest.fixture
async def queue(settings: AwsSettings, app: str) -> AsyncIterator[tuple[Any, str, str]]:
    async with AwsClients(settings, "sqs") as clients:
        url = (await clients.sqs.create_queue(QueueName=f"{app}-poller"))["QueueUrl"]
        attributes = await clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"]
        )
        yield clients.sqs, url, attributes["Attributes"]["QueueArn"]


async def send(sqs: Any, url: str, *bodies: str) -> list[str]:
    ids = []
    for body in bodies:
        sent = await sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": "ORDER_PLACED"},
                "dataversion": {"DataType": "Number", "StringValue": "2"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            },
        )
        ids.append(sent["MessageId"])
    return ids


async def counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) as SQS reports them."""
    found = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    attributes = found["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


async def poll_once(
    sqs: Any, url: str, arn: str, settings: AwsSettings, answer: Any, spec: QueueSpec = SPEC
) -> list[dict[str, Any]]:
    """Run a poller until its handler has seen one batch; return the events it got."""
    events: list[dict[str, Any]] = []
    handled = anyio.Event()

    async def handler(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
        events.append(event)
        handled.set()
        if isinstance(answer, Exception):
            raise answer
        answered: Mapping[str, Any] = answer(event) if callable(answer) else answer
        return answered

    poller = SqsPoller(sqs, replace(spec, name=url.rsplit("/", 1)[-1]), url, arn, handler, settings)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(poller.run)
            await handled.wait()
            poller.stop()
    return events


async def test_poller_builds_the_lambda_sqs_event(
    queue: tuple[Any, str, str], settings: AwsSettings
) -> None:
    sqs, url, arn = queue
    [message_id] = await send(sqs, url, '{"hello": "lambda"}')
    [event] = await poll_once(sqs, url, arn, settings, {"batchItemFailures": []})
    [record] = event["Records"]
    assert list(event) == ["Records"]
    assert [k for k in record if k != "md5OfMessageAttributes"] == RECORD_KEYS
    assert record["messageId"] == message_id and record["receiptHandle"]
    assert record["body"] == '{"hello": "lambda"}'
    assert record["md5OfBody"] == hashlib.md5(b'{"hello": "lambda"}').hexdigest()
    assert {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    } <= set(record["attributes"])
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "type": {
            "stringValue": "ORDER_PLACED",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "dataversion": {
            "stringValue": "2",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
        "blob": {
            "binaryValue": "AAE=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == settings.region
    assert await counts(sqs, url) == (0, 0), "a completed record was not deleted"


async def test_only_records_in_batch_item_failures_stay_on_the_queue(
    queue: tuple[Any, str, str], settings: AwsSettings
) -> None:
    sqs, url, arn = queue
    ids = await send(sqs, url, "a", "b", "c")

    def fail_b(event: dict[str, Any]) -> dict[str, Any]:
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "b"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}

    [event] = await poll_once(sqs, url, arn, settings, fail_b)
    assert sorted(r["messageId"] for r in event["Records"]) == sorted(ids)
    assert await counts(sqs, url) == (0, 1), "only b waits for its visibility timeout"


async def test_a_handler_error_leaves_the_whole_batch_to_the_visibility_timeout(
    queue: tuple[Any, str, str], settings: AwsSettings
) -> None:
    sqs, url, arn = queue
    await send(sqs, url, "a", "b")
    await poll_once(sqs, url, arn, settings, RuntimeError("function crashed"))
    assert await counts(sqs, url) == (0, 2)


@pytest.mark.parametrize(("max_receive_count", "logged"), [(2, False), (1, True)])
async def test_a_handler_error_on_the_last_receive_logs_that_sqs_dead_letters_the_batch(
    queue: tuple[Any, str, str],
    settings: AwsSettings,
    caplog: pytest.LogCaptureFixture,
    max_receive_count: int,
    logged: bool,
) -> None:
    sqs, url, arn = queue
    ids = await send(sqs, url, "a", "b")
    spec = replace(SPEC, dlq="billing-dlq", max_receive_count=max_receive_count)
    caplog.set_level(logging.ERROR, logger="adapters.aws")
    await poll_once(sqs, url, arn, settings, RuntimeError("function crashed"), spec)

    lines = [r for r in caplog.records if r.getMessage().startswith("dead-lettered")]
    assert sorted(vars(line)["message_id"] for line in lines) == (sorted(ids) if logged else [])
    for line in lines:
        assert line.levelno == logging.ERROR and vars(line)["service"] == "billing"
        assert (vars(line)["queue"], vars(line)["dlq"]) == (url.rsplit("/", 1)[-1], "billing-dlq")
        assert vars(line)["event_type"] == "ORDER_PLACED" and vars(line)["receive_count"] == 1
        assert "max_receive_count 1" in vars(line)["reason"]
        assert "function crashed" in vars(line)["reason"]


async def test_batch_in_hand_is_finished_and_deleted_when_the_poller_is_cancelled(
    queue: tuple[Any, str, str], settings: AwsSettings
) -> None:
    sqs, url, arn = queue
    await send(sqs, url, "a", "b")
    started, finished = anyio.Event(), anyio.Event()

    async def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started.set()
        await anyio.sleep(0.3)
        finished.set()
        return {"batchItemFailures": []}

    poller = SqsPoller(sqs, replace(SPEC, name="slow"), url, arn, slow, settings)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            await group.start(poller.run)
            await started.wait()
            group.cancel_scope.cancel()
    assert finished.is_set(), "shutdown cut the batch short"
    assert await counts(sqs, url) == (0, 0)


def test_a_response_naming_an_unknown_record_fails_the_whole_batch() -> None:
    batch = ["m1", "m2", "m3"]
    assert failed_message_ids({"batchItemFailures": []}, batch) == set()
    assert failed_message_ids(None, batch) == set()
    assert failed_message_ids({}, batch) == set()
    assert failed_message_ids({"batchItemFailures": None}, batch) == set(), "null: all succeeded"
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "m2"}]}, batch) == {"m2"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, batch) == set(
        batch
    )
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, batch) == set(batch)
    assert failed_message_ids("not a response", batch) == set(batch)


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str


async def test_a_batch_longer_than_its_visibility_timeout_keeps_what_was_handled(
    settings: AwsSettings, app: str
) -> None:
    """Ten records of 0.6 s in a batch with 2 s to live: the handler stops taking records in
    time, those handled are deleted, the others come back and are handled later."""
    billing = Domain(
        "billing",
        DomainSettings(
            visibility_timeout=2.0,
            max_receive_count=5,
            batch_size=10,
            concurrency=1,
            retry_attempts=1,
        ),
    )
    started: list[str] = []
    completed: list[str] = []

    @billing.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        started.append(event.order_id)
        await anyio.sleep(0.6)
        completed.append(event.order_id)

    orders = [f"o{n}" for n in range(10)]
    fast = replace(settings, wait_time_seconds=1, settle_timeout=60)
    async with Harness(
        billing,
        transport=sns_sqs(fast, handler_for=sqs_batch_handler),
        clock=SystemClock(),
        app=app,
    ) as h:
        ctx = h.runtime.context("orders")
        for order in orders:
            ctx.publish(OrderPlaced(order_id=order))
        await h.runtime.publisher.publish(ctx.outbox)
        await h.settle()
        dead = await h.dead_letters("billing")
    assert dead == [], "records reached the DLQ"
    assert sorted(completed) == orders
    assert sorted(started) == orders, "a record was cut off mid-way or handled again"


class Nowhere:
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        pass

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        pass


async def test_the_poller_claims_and_records_a_stateless_domains_batch_in_two_dynamodb_calls(
    queue: tuple[Any, str, str], settings: AwsSettings, app: str
) -> None:
    """`tctf run --aws` polls through the Lambda batch path, so a batch of a domain keeping
    its idempotency records in a table of their own costs two DynamoDB calls, as in Lambda."""
    sqs, url, arn = queue
    billing = Domain("billing", DomainSettings(retry_attempts=1))
    charged: list[str] = []

    @billing.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        charged.append(event.order_id)

    orders = [f"o{n}" for n in range(10)]
    bodies = [
        Envelope(
            id=f"evt-{order}",
            source="orders",
            type=OrderPlaced.type,
            time="2026-01-01T00:00:00.000Z",
            dataversion=1,
            correlationid="corr-1",
            data=OrderPlaced(order_id=order),
        )
        .encode()
        .decode()
        for order in orders
    ]
    await send(sqs, url, *bodies)
    spec = Topology.from_domains([billing], app=app).idempotency_tables["billing"]
    calls: list[str] = []
    async with AwsClients(settings, "dynamodb") as clients:
        await create_table(spec, client=clients.dynamodb)
        clients.dynamodb.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
        records = DynamoTable(spec, client=clients.dynamodb)
        dispatcher = assemble(billing, Services(Nowhere()), idempotency_table=records)
        handle = sqs_batch_handler(dispatcher, sqs)
        batches: list[int] = []

        async def counting(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
            batches.append(len(event["Records"]))
            return await handle(event, context)

        poller = SqsPoller(sqs, replace(SPEC, name=f"{app}-poller"), url, arn, counting, settings)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                await group.start(poller.run)
                while sum(batches) < len(orders) or poller.in_flight:
                    await anyio.sleep(0.05)
                poller.stop()

    assert sorted(charged) == orders
    assert batches == [10]
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    assert await counts(sqs, url) == (0, 0)
