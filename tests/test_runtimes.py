"""One domain on all three runtimes — in memory, the SQS poller on moto, the Lambda handler on
moto — given the same input, ends with the same outcomes, the same published envelopes (ids and
times aside) and the same delivery log lines (timestamps and transport record ids aside).

Each runtime assembles the domain's dispatch through `bus.assembly`; this is what holds them
to it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import boto3
import orjson
import pytest

import domains
from adapters.aws.poller import lambda_sqs_event
from adapters.aws.session import AwsSettings
from adapters.aws.sns_sqs import sns_sqs
from adapters.lambda_.boot import build
from adapters.lambda_.sqs import sqs_batch_handler
from bus.envelope import Envelope
from bus.memory import in_memory
from bus.runtime import Runtime
from bus.testing import RecordingPublisher
from bus.topology import Topology
from tests.delivery_log import listening

REGION = "us-east-1"
ACCOUNT = "123456789012"
LOGGED = ("message", "levelname", "service", "domain", "handler", "type", "event_id")
LOGGED_TOO = ("correlation_id", "outcome", "error")


def _inputs() -> list[Envelope]:
    """A sign-up to welcome, and one whose payload cannot be read (parked with its reason)."""

    def user_created(number: int, data: dict[str, Any]) -> Envelope:
        return Envelope(
            id=f"0190a000-0000-7000-8000-00000000000{number}",
            source="users",
            type="USER_CREATED",
            time="2026-12-01T10:00:00.000Z",
            dataversion=2,
            correlationid=f"signup-{number}",
            data=data,
            subject=f"u{number}",
        )

    return [
        user_created(1, {"user_id": "u1", "email": "ada@example.com", "name": "Ada"}),
        user_created(2, {"user_id": "u2", "name": "no e-mail"}),
    ]


class DeliveryLines(logging.Handler):
    """The delivery log's lines, as the keys and values that must agree across runtimes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []
        self.changed = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        line = {key: getattr(record, key, None) for key in LOGGED + LOGGED_TOO}
        line["message"] = record.getMessage()
        self.lines.append(line)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(60):  # a guard only: moto on a loaded machine is slow
            while len(self.lines) < count:
                self.changed = anyio.Event()
                await self.changed.wait()


@pytest.fixture
def lines() -> Iterator[DeliveryLines]:
    with listening(DeliveryLines()) as handler:
        yield handler


def _comparable(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    """Envelopes as plain data, without what is fresh on every run (id, time)."""
    out = []
    for envelope in envelopes:
        raw = orjson.loads(envelope.encode())
        raw.pop("id")
        raw.pop("time")
        out.append(raw)
    return sorted(out, key=lambda e: (e["type"], orjson.dumps(e)))


def _sorted(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(lines, key=lambda line: orjson.dumps(line, option=orjson.OPT_SORT_KEYS))


async def _in_memory(lines: DeliveryLines) -> tuple[list[dict[str, Any]], list[Envelope]]:
    published: list[Envelope] = []
    runtime = Runtime(
        [domains.load("messaging")],
        in_memory(seed=1),
        publisher=lambda inner: RecordingPublisher(inner, published),
    )
    async with runtime.running():
        await runtime.transport.publish(_inputs())
        await runtime.transport.settle()
    return lines.lines, published


async def _poller(
    lines: DeliveryLines, moto_endpoint: str
) -> tuple[list[dict[str, Any]], list[Envelope]]:
    """`tctf run --aws`'s path: SQS long-polled, each batch handed to the Lambda handler."""
    published: list[Envelope] = []
    settings = AwsSettings(endpoint_url=moto_endpoint, retry_deadline=10.0)
    runtime = Runtime(
        [domains.load("messaging")],
        sns_sqs(settings, handler_for=sqs_batch_handler),
        app=f"eq{uuid.uuid4().hex[:8]}",
        publisher=lambda inner: RecordingPublisher(inner, published),
    )
    async with runtime.running():
        await runtime.transport.publish(_inputs())
        await lines.wait_for(3)  # welcome handled, the unreadable one parked, e-mail sent
    return lines.lines, published


async def _lambda(
    lines: DeliveryLines, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[dict[str, Any]], list[Envelope]]:
    """The function as Lambda runs it: built from its environment, fed SQS events made from
    what its queues hold; what it published read back from AWS."""
    app_name = f"eq{uuid.uuid4().hex[:8]}"
    topology = Topology.from_domains([domains.load("messaging")], app=app_name)
    env = {
        "TCTF_DOMAIN": "messaging",
        "TCTF_APP": app_name,
        "TCTF_TRANSPORT": "sns",
        "TCTF_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{topology.topic}",
        "TCTF_PROVISION": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": REGION,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    function = await anyio.to_thread.run_sync(build, env)  # it runs a loop of its own
    try:
        aws = {"endpoint_url": moto_endpoint, "region_name": REGION}
        sqs, sns = boto3.client("sqs", **aws), boto3.client("sns", **aws)
        capture = sqs.create_queue(QueueName=f"{app_name}-capture")["QueueUrl"]
        capture_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{app_name}-capture"
        sns.subscribe(
            TopicArn=env["TCTF_TOPIC_ARN"],
            Protocol="sqs",
            Endpoint=capture_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        sns.publish_batch(
            TopicArn=env["TCTF_TOPIC_ARN"],
            PublishBatchRequestEntries=[
                {
                    "Id": str(n),
                    "Message": envelope.encode().decode(),
                    "MessageAttributes": {
                        "type": {"DataType": "String", "StringValue": envelope.type}
                    },
                }
                for n, envelope in enumerate(_inputs())
            ],
        )
        tasks: list[Envelope] = []
        for purpose in ("events", "tasks"):
            queue = topology.require_queue("messaging", purpose)
            url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
            messages = _drain(sqs, url)
            if purpose == "tasks":
                tasks = [Envelope.decode(m["Body"]) for m in messages]
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.name}"
            answer = await anyio.to_thread.run_sync(
                function, lambda_sqs_event(messages, arn, REGION), None
            )
            assert answer == {"batchItemFailures": []}
        captured = [Envelope.decode(m["Body"]) for m in _drain(sqs, capture)]
        events = [e for e in captured if e.source == "messaging"]  # not the inputs
        return lines.lines, [*events, *tasks]
    finally:
        await anyio.to_thread.run_sync(function.close)


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages"):
        messages.extend(batch)
    return messages


async def test_one_domain_behaves_alike_in_memory_on_the_poller_and_on_lambda(
    lines: DeliveryLines, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_lines, memory_published = await _in_memory(lines)
    results = {"memory": (_sorted(memory_lines), _comparable(memory_published))}
    lines.lines = []
    poller_lines, poller_published = await _poller(lines, moto_endpoint)
    results["poller"] = (_sorted(poller_lines), _comparable(poller_published))
    lines.lines = []
    lambda_lines, lambda_published = await _lambda(lines, moto_endpoint, monkeypatch)
    results["lambda"] = (_sorted(lambda_lines), _comparable(lambda_published))

    expected_lines, expected_published = results["memory"]
    assert [line["outcome"] for line in expected_lines].count("parked") == 1
    assert {e["type"] for e in expected_published} == {"SEND_EMAIL", "WELCOME_EMAIL_SENT"}
    for runtime in ("poller", "lambda"):
        assert results[runtime][0] == expected_lines, f"log lines on the {runtime}"
        assert results[runtime][1] == expected_published, f"published on the {runtime}"
