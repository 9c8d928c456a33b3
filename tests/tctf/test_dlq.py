"""`tctf dlq` on moto server: records parked by the functions the way AWS runs them, listed
with their reasons, and moved back: a queue's to its queue, an outbox's published."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from adapters.aws.errors import PublishFailed
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import Domain, Event
from bus.clock import isoformat
from bus.envelope import Envelope
from bus.topology import Topology
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users
from domains.users.contracts import UserCreated
from tctf.aws import up
from tctf.cli import main
from tctf.config import load_domains
from tests.adapters.lambda_.conftest import LAMBDA_GO, LambdaContext, sample

REGION = "us-east-1"
ACCOUNT = "123456789012"
_apps = itertools.count()
MAX_RECEIVE_COUNT = (
    Topology.from_domains([messaging])
    .require_queue("messaging_consumers", "events")
    .max_receive_count
)


class OrderShipped(Event):
    """An event messaging does not handle: its function parks it."""

    type = "ORDER_SHIPPED"
    order_id: str


def _envelope(event: Event, id: str, source: str = "users", age: float = 0.0) -> Envelope:
    return Envelope(
        id=id,
        source=source,
        type=event.type,
        time=isoformat(time.time() - age),
        dataversion=event.version,
        correlationid="corr-dlq",
        data=event,
    )


def _user_created(user_id: str, name: str = "Ada") -> Envelope:
    event = UserCreated(user_id=user_id, email=f"{user_id}@example.com", name=name)
    return _envelope(event, f"evt-{user_id}")


@pytest.fixture
def app_name(moto_endpoint: str) -> str:
    """A fresh app provisioned by `tctf up`: topic, every domain's queues and outbox DLQs."""
    name = f"dlq{next(_apps)}"
    asyncio.run(up(moto_endpoint, "sns", load_domains(), app=name))
    return name


def _function(endpoint: str, app: str, domain: str) -> LambdaApp:
    """The domain's Lambda function, built from its environment as AWS starts it."""
    return build(
        {
            "TCTF_DOMAIN": domain,
            "TCTF_TRANSPORT": "sns",
            "TCTF_APP": app,
            "TCTF_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{app}-events",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }
    )


@pytest.fixture
def messaging_function(moto_endpoint: str, app_name: str) -> Iterator[LambdaApp]:
    function = _function(moto_endpoint, app_name, "messaging_consumers")
    yield function
    function.close()


@pytest.fixture
def users_function(moto_endpoint: str, app_name: str) -> Iterator[LambdaApp]:
    function = _function(moto_endpoint, app_name, "users")
    yield function
    function.close()


def _sqs_event(records: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """An SQS event of (message id, body, queue ARN) records, in AWS's sample shape."""
    template = sample(LAMBDA_GO / "sqs-event.json")["Records"][0]
    return {
        "Records": [
            {**template, "messageId": mid, "body": body, "eventSourceARN": arn}
            for mid, body, arn in records
        ]
    }


def _queue_arn(app: str, name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{app}-{name}"


_serializer = TypeSerializer()


def _image(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON as a stream record carries it: binaries base64 encoded."""
    image = {k: _serializer.serialize(v) for k, v in item.items()}
    for value in image.values():
        if "B" in value:
            value["B"] = base64.b64encode(bytes(value["B"])).decode()
    return image


def _stream_event(endpoint: str, table: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """INSERTs of outbox items on the table's stream, in AWS's sample shape."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    template = sample(LAMBDA_GO / "dynamodb-event.json")["Records"][0]
    records = []
    for number, item in enumerate(items, start=1):
        change = {
            "Keys": _image({"PK": item["PK"], "SK": item["SK"]}),
            "NewImage": _image(item),
            "SequenceNumber": f"{number:021d}",
            "StreamViewType": "NEW_IMAGE",
        }
        records.append(
            {**template, "eventName": "INSERT", "eventSourceARN": stream_arn, "dynamodb": change}
        )
    return {"Records": records}


def _outbox_item(seq: int, body: bytes) -> dict[str, Any]:
    return {"PK": f"OUTBOX#USER#u{seq}", "SK": f"EVENT#{seq:020d}", "body": body}


def _sqs(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)


def _moved_by_sqs(endpoint: str, app: str, body: str) -> None:
    """A message its consumer never deletes: SQS moves it to the DLQ after maxReceiveCount."""
    sqs = _sqs(endpoint)
    url = sqs.get_queue_url(QueueName=f"{app}-messaging_consumers-events")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=body)
    for _ in range(MAX_RECEIVE_COUNT + 1):  # the receive after the last moves it
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)


def _count(endpoint: str, queue: str) -> int:
    sqs = _sqs(endpoint)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(n) for n in attributes.values())


def _received(endpoint: str, queue: str) -> list[dict[str, Any]]:
    sqs = _sqs(endpoint)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages: list[dict[str, Any]] = received.get("Messages", [])
    return messages


def _bodies(endpoint: str, queue: str) -> list[str]:
    return [m["Body"] for m in _received(endpoint, queue)]


@pytest.fixture
def parked(
    moto_endpoint: str,
    app_name: str,
    messaging_function: LambdaApp,
    users_function: LambdaApp,
) -> str:
    """Every DLQ of the app holding what the functions and SQS put there; the app's name."""
    event = _sqs_event(
        [
            ("m-garbled", "not an envelope", _queue_arn(app_name, "messaging_consumers-events")),
            (
                "m-unknown",
                _envelope(OrderShipped(order_id="o1"), "evt-o1", "orders").encode().decode(),
                _queue_arn(app_name, "messaging_consumers-events"),
            ),
            ("m-task", "{}", _queue_arn(app_name, "messaging_consumers-tasks")),
        ]
    )
    assert messaging_function(event, LambdaContext()) == {"batchItemFailures": []}
    _moved_by_sqs(moto_endpoint, app_name, _user_created("u7").encode().decode())
    huge = _user_created("u2", name="x" * 300_000).encode()  # over SNS's 256 KiB
    stream = _stream_event(
        moto_endpoint,
        f"{app_name}-users",
        [_outbox_item(1, b"{not json"), _outbox_item(2, huge)],
    )
    assert users_function(stream, LambdaContext()) == {"batchItemFailures": []}
    return app_name


def test_dlq_lists_every_dlq_with_each_records_reason_and_leaves_them_there(
    moto_endpoint: str, parked: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "--endpoint-url", moto_endpoint, "--app", parked]) == 0
    out = capsys.readouterr().out
    blocks = _blocks(out)

    assert f"{parked}-auth_core-events-dlq (auth_core events): 0 records" in blocks
    assert [header for header in blocks if not header.endswith(": 0 records")] == [
        f"{parked}-messaging_consumers-events-dlq (messaging_consumers events): 3 records",
        f"{parked}-messaging_consumers-tasks-dlq (messaging_consumers tasks): 1 record",
        f"{parked}-users-outbox-dlq (users outbox): 2 records",
    ]
    events = "\n".join(
        blocks[f"{parked}-messaging_consumers-events-dlq (messaging_consumers events): 3 records"]
    )
    assert "reason: record body is not JSON" in events
    assert "ORDER_SHIPPED evt-o1" in events
    assert f"source: arn:aws:sqs:{REGION}:{ACCOUNT}:{parked}-messaging_consumers-events" in events
    assert "USER_CREATED evt-u7" in events
    assert "reason: moved by SQS after maxReceiveCount" in events
    assert f"source: {parked}-messaging_consumers-events\n" in events + "\n"
    outbox = "\n".join(blocks[f"{parked}-users-outbox-dlq (users outbox): 2 records"])
    assert "reason: record body is not JSON" in outbox
    assert "USER_CREATED evt-u2" in outbox and "over the SNS limit" in outbox
    assert f"table/{parked}-users/stream/" in outbox  # the table's stream, where the item came from
    # Read-only: every record is still there.
    assert _count(moto_endpoint, f"{parked}-messaging_consumers-events-dlq") == 3
    assert _count(moto_endpoint, f"{parked}-users-outbox-dlq") == 2


def _blocks(out: str) -> dict[str, list[str]]:
    """The listing's lines, under the header line of their DLQ."""
    blocks: dict[str, list[str]] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            blocks[line] = []
        else:
            blocks[list(blocks)[-1]].append(line)
    return blocks


def test_dlq_json_prints_one_line_per_dlq_with_every_record(
    moto_endpoint: str, parked: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dlq", "--json", "--domain", "messaging_consumers", "--endpoint-url", moto_endpoint]
    assert main([*argv, "--app", parked]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [(d["dlq"], d["purpose"], d["count"]) for d in lines] == [
        (f"{parked}-messaging_consumers-events-dlq", "events", 3),
        (f"{parked}-messaging_consumers-tasks-dlq", "tasks", 1),
        (f"{parked}-messaging_consumers-outbox-dlq", "outbox", 0),
    ]
    records = {r["message_id"]: r for r in lines[0]["records"]}
    by_type = {(r["type"], r["id"]): r for r in records.values()}
    garbled = by_type[(None, None)]
    assert garbled["reason"].startswith("record body is not JSON")
    assert garbled["source"] == _queue_arn(parked, "messaging_consumers-events")
    assert garbled["receive_count"] == 1
    moved = by_type[("USER_CREATED", "evt-u7")]
    assert moved["reason"] == "moved by SQS after maxReceiveCount"
    assert moved["source"] == f"{parked}-messaging_consumers-events"
    assert moved["receive_count"] > MAX_RECEIVE_COUNT
    assert "ORDER_SHIPPED" in by_type[("ORDER_SHIPPED", "evt-o1")]["reason"]
    (task,) = lines[1]["records"]
    assert task["source"] == _queue_arn(parked, "messaging_consumers-tasks")


def test_text_listing_shows_twenty_records_of_a_dlq_and_counts_the_rest(
    moto_endpoint: str, app_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = _sqs(moto_endpoint)
    url = sqs.get_queue_url(QueueName=f"{app_name}-messaging_consumers-tasks-dlq")["QueueUrl"]
    for start in (0, 10, 20):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": f"task {n}"} for n in range(start, start + 10)],
        )
    argv = [
        "dlq",
        "--domain",
        "messaging_consumers",
        "--endpoint-url",
        moto_endpoint,
        "--app",
        app_name,
    ]
    assert main(argv) == 0
    tasks = _blocks(capsys.readouterr().out)[
        f"{app_name}-messaging_consumers-tasks-dlq (messaging_consumers tasks): 30 records"
    ]

    assert len([line for line in tasks if "received" in line]) == 20
    assert tasks[-1] == "  ... 10 more (--json lists every one)"


def test_redrive_moves_a_queues_dead_letters_back_to_it(
    moto_endpoint: str, parked: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--endpoint-url", moto_endpoint, "--app", parked]
    assert main(["dlq", "redrive", "messaging_consumers", *argv]) == 0
    assert main(["dlq", *argv, "redrive", "messaging_consumers", "--purpose", "tasks"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"tctf dlq: moved 3 records from {parked}-messaging_consumers-events-dlq back to "
        f"{parked}-messaging_consumers-events",
        f"tctf dlq: moved 1 record from {parked}-messaging_consumers-tasks-dlq back to "
        f"{parked}-messaging_consumers-tasks",
    ]
    assert _count(moto_endpoint, f"{parked}-messaging_consumers-events-dlq") == 0
    assert _count(moto_endpoint, f"{parked}-messaging_consumers-tasks-dlq") == 0
    events = _bodies(moto_endpoint, f"{parked}-messaging_consumers-events")
    assert "not an envelope" in events and len(events) == 3
    assert _bodies(moto_endpoint, f"{parked}-messaging_consumers-tasks") == ["{}"]


def test_redrive_warns_about_letters_older_than_the_idempotency_ttl(
    moto_endpoint: str, app_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ttl = messaging.settings.idempotency_ttl
    sqs = _sqs(moto_endpoint)
    url = sqs.get_queue_url(QueueName=f"{app_name}-messaging_consumers-events-dlq")["QueueUrl"]
    old = _envelope(OrderShipped(order_id="o1"), "evt-old", age=ttl + 3600)
    young = _envelope(OrderShipped(order_id="o2"), "evt-young", age=ttl - 3600)
    for envelope in (old, young):
        sqs.send_message(QueueUrl=url, MessageBody=envelope.encode().decode())

    argv = ["--endpoint-url", moto_endpoint, "--app", app_name]
    assert main(["dlq", "redrive", "messaging_consumers", *argv]) == 0

    warning, moved = capsys.readouterr().out.splitlines()
    assert warning.startswith(
        f"tctf dlq: warning: 1 record of {app_name}-messaging_consumers-events-dlq is older than "
        f"messaging_consumers's idempotency_ttl ({ttl / 3600:g} h)"
    )
    assert warning.endswith("(evt-old)")
    assert moved.startswith("tctf dlq: moved 2 records")


class RefusedBySns:
    """A publisher SNS refuses as the sender's fault, as it answers a malformed entry."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        failures = {f"{e.type} {e.id}": "InvalidParameter: refused" for e in envelopes}
        raise PublishFailed("SNS PublishBatch", failures, 1, sender_fault=True)

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        raise AssertionError("the outbox relay only publishes")


def test_redrive_publishes_an_outbox_letter_and_keeps_one_that_still_cannot_be(
    moto_endpoint: str, app_name: str, users_function: LambdaApp, capsys: pytest.CaptureFixture[str]
) -> None:
    table = f"{app_name}-users"
    welcome = _user_created("u1")
    refused = LambdaApp(
        users,
        RefusedBySns(),
        dead_letters=users_function.dead_letters,
        outbox_dead_letter_queue=users_function.outbox_dead_letter_queue,
    )
    try:
        stream = _stream_event(moto_endpoint, table, [_outbox_item(1, welcome.encode())])
        assert refused(stream, LambdaContext()) == {"batchItemFailures": []}
    finally:
        refused.close()
    stream = _stream_event(moto_endpoint, table, [_outbox_item(2, b"{not json")])
    assert users_function(stream, LambdaContext()) == {"batchItemFailures": []}
    outbox_dlq = f"{app_name}-users-outbox-dlq"
    assert _count(moto_endpoint, outbox_dlq) == 2

    argv = ["dlq", "redrive", "users", "--purpose", "outbox", "--endpoint-url", moto_endpoint]
    assert main([*argv, "--app", app_name]) == 1

    summary, kept = capsys.readouterr().out.splitlines()
    assert summary == (
        f"tctf dlq: published 1 record of {outbox_dlq} to topic {app_name}-events; 1 stayed"
    )
    message_id, reason = kept.strip().split(": ", 1)
    assert reason.startswith("record body is not JSON: unexpected character")
    (delivered,) = _bodies(moto_endpoint, f"{app_name}-messaging_consumers-events")
    assert json.loads(delivered) == json.loads(welcome.encode())
    (left,) = _received(moto_endpoint, outbox_dlq)
    assert left["MessageId"] == message_id
    assert json.loads(left["Body"])["PK"] == "OUTBOX#USER#u2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq", "redrive", "nope"], "no domain 'nope': expected domains/nope/app.py"),
        (
            ["dlq", "redrive", "greeter", "--purpose", "outbox"],
            "domain 'greeter' has no outbox DLQ (its DLQs: events, tasks)",
        ),
        (
            ["dlq", "redrive", "users", "--purpose", "tasks"],
            "domain 'users' has no tasks DLQ (its DLQs: events, outbox)",
        ),
        (["dlq", "--domain", "nope"], "no domain 'nope'"),
    ],
)
def test_configuration_mistakes_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], greeter: Domain
) -> None:
    assert main([*argv, "--endpoint-url", "http://127.0.0.1:1"]) == 2
    assert message in _error_line(capsys.readouterr().err)


def test_an_app_not_provisioned_is_named_with_what_to_do(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    n = next(_apps)
    argv = ["dlq", "--endpoint-url", moto_endpoint, "--app", f"absent{n}"]
    assert main(argv) == 2
    error = _error_line(capsys.readouterr().err)
    # the first domain's queue, whichever domain sorts first
    assert re.search(rf"queue absent{n}-[a-z_]+-events does not exist: run `tctf up`", error)


def _error_line(err: str) -> str:
    """The one line tctf wrote to stderr (the moto server in this process logs there too)."""
    (line,) = [line for line in err.splitlines() if line.startswith("tctf")]
    return line


def test_listing_escapes_terminal_control_characters_a_message_carries(
    moto_endpoint: str, app_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2J\x9b31m"
    envelope = Envelope(
        id=f"evt{hostile}",
        source="users",
        type=f"ORDER{hostile}",
        time="2026-01-01T00:00:00.000Z",
        dataversion=1,
        correlationid="corr-dlq",
        data={"order_id": "o1"},
    )
    sqs = _sqs(moto_endpoint)
    url = sqs.get_queue_url(QueueName=f"{app_name}-messaging_consumers-tasks-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=envelope.encode().decode())
    argv = [
        "dlq",
        "--domain",
        "messaging_consumers",
        "--endpoint-url",
        moto_endpoint,
        "--app",
        app_name,
    ]

    assert main(argv) == 0
    text = capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    as_json = capsys.readouterr().out

    for out in (text, as_json):
        assert not any(char in out for char in "\x1b\x07\x9b")
    assert "ORDER\\x1b]0;owned\\x07\\x1b[2J\\x9b31m evt\\x1b" in text
    (record,) = next(line for line in map(json.loads, as_json.splitlines()) if line["count"])[
        "records"
    ]
    assert record["type"] == f"ORDER{hostile}"
