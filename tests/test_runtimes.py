"""One domain on all three runtimes — in memory, the SQS poller on moto, the Lambda handler on
moto — given the same input, ends with the same outcomes, the same published envelopes (ids and
times aside), the same delivery log lines (timestamps and transport record ids aside), each
written as JSON with the same keys (and Lambda's own keys in Lambda), and the same metrics,
flushed as EMF documents that the specification accepts.

Each runtime assembles the domain's dispatch through `bus.assembly`; this is what holds them
to it.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
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
from bus import Domain
from bus.emf import EmfWriter
from bus.envelope import Envelope
from bus.memory import in_memory
from bus.observability import JsonFormatter
from bus.runtime import Runtime
from bus.testing import RecordingPublisher
from bus.topology import Topology
from tests.delivery_log import listening
from tests.emf import check_emf, emf_lines
from tests.sqs import drain

REGION = "us-east-1"
ACCOUNT = "123456789012"
LOGGED = ("message", "levelname", "service", "handler", "event_type", "event_id")
LOGGED_TOO = ("correlation_id", "outcome", "error", "receive_count")
#: The keys of every delivery line as written (Powertools' names), on every runtime.
JSON_KEYS = {
    "timestamp",
    "level",
    "message",
    "service",
    "correlation_id",
    "event_id",
    "event_type",
    "handler",
    "outcome",
    "duration_ms",
    "receive_count",
}
#: What Lambda adds to each line of an invocation.
LAMBDA_KEYS = {"cold_start", "function_name", "function_request_id", "xray_trace_id"}
NAMESPACE = "tctf-runtimes"
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"


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
        #: Each line as `JsonFormatter` writes it.
        self.written: list[dict[str, Any]] = []
        self.changed = anyio.Event()
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        line = {key: getattr(record, key, None) for key in LOGGED + LOGGED_TOO}
        line["message"] = record.getMessage()
        self.lines.append(line)
        self.written.append(orjson.loads(self.format(record)))
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


class Documents:
    """EMF documents as a runtime writes them, each checked against the specification."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def write(self, line: bytes) -> None:
        self.documents.extend(emf_lines(line.decode()))


async def _in_memory(
    lines: DeliveryLines, metrics: Documents
) -> tuple[list[dict[str, Any]], list[Envelope]]:
    published: list[Envelope] = []
    runtime = Runtime(
        [domains.load("greeter")],
        in_memory(seed=1),
        publisher=lambda inner: RecordingPublisher(inner, published),
        metrics=EmfWriter(NAMESPACE, metrics.write),
    )
    async with runtime.running():
        await runtime.transport.publish(_inputs())
        await runtime.transport.settle()
    return lines.lines, published


async def _poller(
    lines: DeliveryLines, metrics: Documents, moto_endpoint: str
) -> tuple[list[dict[str, Any]], list[Envelope]]:
    """`tctf run --aws`'s path: SQS long-polled, each batch handed to the Lambda handler,
    which writes the batch's metrics when it is done."""
    published: list[Envelope] = []
    settings = AwsSettings(endpoint_url=moto_endpoint, retry_deadline=10.0)
    writer = EmfWriter(NAMESPACE, metrics.write)
    runtime = Runtime(
        [domains.load("greeter")],
        sns_sqs(settings, handler_for=partial(sqs_batch_handler, metrics=writer)),
        app=f"eq{uuid.uuid4().hex[:8]}",
        publisher=lambda inner: RecordingPublisher(inner, published),
        metrics=writer,  # as `tctf run --aws` does: the per-handler metrics recorded too
    )
    async with runtime.running():
        await runtime.transport.publish(_inputs())
        await lines.wait_for(3)  # welcome handled, the unreadable one parked, greeting sent
    return lines.lines, published


class LambdaContext:
    """The part of Lambda's context object a function reads: who it is, which request."""

    function_name = "tctf-greeter"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tctf-greeter"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


async def _lambda(
    lines: DeliveryLines, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[dict[str, Any]], list[Envelope]]:
    """The function as Lambda runs it: built from its environment, fed SQS events made from
    what its queues hold, with Lambda's context and X-Ray header; what it published read
    back from AWS. Its metrics go to stdout, where Lambda's log is."""
    app_name = f"eq{uuid.uuid4().hex[:8]}"
    topology = Topology.from_domains([domains.load("greeter")], app=app_name)
    env = {
        "TCTF_DOMAIN": "greeter",
        "TCTF_APP": app_name,
        "TCTF_TRANSPORT": "sns",
        "TCTF_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{topology.topic}",
        "TCTF_PROVISION": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "TCTF_METRICS_NAMESPACE": NAMESPACE,
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
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
            queue = topology.require_queue("greeter", purpose)
            url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
            messages = drain(sqs, url)
            if purpose == "tasks":
                tasks = [Envelope.decode(m["Body"]) for m in messages]
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.name}"
            answer = await anyio.to_thread.run_sync(
                function, lambda_sqs_event(messages, arn, REGION), LambdaContext(purpose)
            )
            assert answer == {"batchItemFailures": []}
        captured = [Envelope.decode(m["Body"]) for m in drain(sqs, capture)]
        events = [e for e in captured if e.source == "greeter"]  # not the inputs
        return lines.lines, [*events, *tasks]
    finally:
        await anyio.to_thread.run_sync(function.close)


def _counted(documents: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """Every counter in the documents, summed by (service, handler, metric)."""
    totals: Counter[tuple[str, str, str]] = Counter()
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        for metric in directive["Metrics"]:
            if metric["Unit"] == "Count":
                key = (document["service"], document.get("handler", ""), metric["Name"])
                totals[key] += document[metric["Name"]]
    return dict(totals)


def _measured(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Which (handler, measurement) the documents hold values of."""
    return {
        (document.get("handler", ""), metric["Name"])
        for document in documents
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        if metric["Unit"] == "Milliseconds"
    }


async def test_one_domain_behaves_alike_in_memory_on_the_poller_and_on_lambda(
    greeter: Domain,
    lines: DeliveryLines,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = {"memory": Documents(), "poller": Documents()}
    memory_lines, memory_published = await _in_memory(lines, metrics["memory"])
    results = {"memory": (_sorted(memory_lines), _comparable(memory_published))}
    written = {"memory": lines.written}
    lines.lines, lines.written = [], []
    poller_lines, poller_published = await _poller(lines, metrics["poller"], moto_endpoint)
    results["poller"] = (_sorted(poller_lines), _comparable(poller_published))
    written["poller"] = lines.written
    lines.lines, lines.written = [], []
    capsys.readouterr()
    lambda_lines, lambda_published = await _lambda(lines, moto_endpoint, monkeypatch)
    results["lambda"] = (_sorted(lambda_lines), _comparable(lambda_published))
    written["lambda"] = lines.written
    lambda_documents = Documents()
    lambda_documents.write(capsys.readouterr().out.encode())
    metrics["lambda"] = lambda_documents

    expected_lines, expected_published = results["memory"]
    assert [line["outcome"] for line in expected_lines].count("parked") == 1
    assert {e["type"] for e in expected_published} == {"GREET"}
    for runtime in ("poller", "lambda"):
        assert results[runtime][0] == expected_lines, f"log lines on the {runtime}"
        assert results[runtime][1] == expected_published, f"published on the {runtime}"

    for runtime, lines_written in written.items():
        assert len(lines_written) == 3
        for line in lines_written:
            extra = LAMBDA_KEYS if runtime == "lambda" else set()
            assert JSON_KEYS | extra <= set(line), f"keys of a line on the {runtime}: {line}"
            assert not (LAMBDA_KEYS - extra) & set(line), f"Lambda's keys on the {runtime}"
            assert line["service"] == "greeter"
            assert "ada@example.com" not in orjson.dumps(line).decode()
    invocations = {(line["function_request_id"], line["cold_start"]) for line in written["lambda"]}
    assert invocations == {("events", True), ("tasks", False)}
    assert {line["xray_trace_id"] for line in written["lambda"]} == {TRACE_ROOT}
    assert {line["function_name"] for line in written["lambda"]} == {"tctf-greeter"}

    expected_counts = _counted(metrics["memory"].documents)
    assert expected_counts == {
        ("greeter", "greeter.welcome_new_user", "Processed"): 1,
        ("greeter", "greeter.welcome_new_user", "Parked"): 1,
        ("greeter", "greeter.greet", "Processed"): 1,
        ("greeter", "", "Greeted"): 1,
    }
    for runtime in ("poller", "lambda"):
        assert _counted(metrics[runtime].documents) == expected_counts, f"metrics: {runtime}"
    for runtime, documents in metrics.items():
        assert _measured(documents.documents) == {
            (handler, name)
            for handler in ("greeter.welcome_new_user", "greeter.greet")
            for name in ("Duration", "RecordAge")
        }, f"measurements on the {runtime}"
        for document in documents.documents:
            check_emf(document)
