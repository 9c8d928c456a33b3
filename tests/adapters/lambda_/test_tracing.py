"""A sign-up is one trace on the Lambda functions too, its context crossing real hops on moto:
DynamoDB's outbox and its stream, SNS, SQS; every SDK call inside the trace is a client span,
and spans are exported before each invocation returns."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

import boto3
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind

from adapters.aws.dead_letters import MemoryDeadLetters
from adapters.aws.poller import lambda_sqs_event
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import Domain
from bus.envelope import Envelope
from bus.topology import Topology
from domains.users.app import domain as users
from tctf.aws import up
from tests.sqs import drain

from .conftest import POWERTOOLS, Inventory, LambdaContext, Published, body, sample
from .test_stateful import _stream_event

REGION = "us-east-1"
ACCOUNT = "123456789012"
_apps = itertools.count()


def _function(endpoint: str, app: str, domain: str, provider: TracerProvider) -> LambdaApp:
    env = {
        "TCTF_DOMAIN": domain,
        "TCTF_TRANSPORT": "sns",
        "TCTF_APP": app,
        "TCTF_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{app}-events",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
    }
    return build(env, tracer_provider=provider)


def _sign_up_event(correlation_id: str) -> dict[str, Any]:
    event = sample(POWERTOOLS / "apiGatewayProxyV2Event.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/users"
    event["requestContext"]["http"]["method"] = "POST"
    event["headers"] = {"content-type": "application/json", "x-correlation-id": correlation_id}
    event["isBase64Encoded"] = False
    event["body"] = orjson.dumps({"email": "ada@example.com", "name": "Ada"}).decode()
    return event


def _drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    return drain(sqs, sqs.get_queue_url(QueueName=queue)["QueueUrl"])


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_sign_up_is_one_trace_across_the_outbox_sns_and_sqs(
    moto_endpoint: str, greeter: Domain
) -> None:
    app = f"trc{next(_apps)}"
    asyncio.run(up(moto_endpoint, "sns", [users, greeter], app=app))
    topology = Topology.from_domains([users, greeter], app=app)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    # Batched, as in production: only the flush at each invocation's end exports them.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name=REGION)
    users_function = _function(moto_endpoint, app, "users", provider)
    messaging_function = _function(moto_endpoint, app, "greeter", provider)
    try:
        response = users_function(_sign_up_event("signup-on-lambda"), LambdaContext())
        assert response is not None and response["statusCode"] == 201, response
        assert {s.name for s in exporter.get_finished_spans()} >= {"POST /users"}

        table = topology.tables["users"]
        items = dynamodb.scan(TableName=table.name, ConsistentRead=True)["Items"]
        outbox = [
            {key: boto3.dynamodb.types.TypeDeserializer().deserialize(v) for key, v in i.items()}
            for i in items
            if i["SK"]["S"].startswith("EVENT#")
        ]
        relayed = users_function(_stream_event(moto_endpoint, table, outbox), LambdaContext())
        assert relayed == {"batchItemFailures": []}

        events_queue = topology.require_queue("greeter", "events")
        [delivered] = _drain(sqs, events_queue.name)
        carried = delivered["MessageAttributes"]["traceparent"]["StringValue"]
        assert Envelope.decode(delivered["Body"]).traceparent == carried
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{events_queue.name}"
        answer = messaging_function(lambda_sqs_event([delivered], arn, REGION), LambdaContext())
        assert answer == {"batchItemFailures": []}

        tasks_queue = topology.require_queue("greeter", "tasks")
        tasks = _drain(sqs, tasks_queue.name)
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{tasks_queue.name}"
        answer = messaging_function(lambda_sqs_event(tasks, arn, REGION), LambdaContext())
        assert answer == {"batchItemFailures": []}
    finally:
        users_function.close()
        messaging_function.close()

    spans = exporter.get_finished_spans()
    server = _one(spans, "POST /users")
    created = _one(spans, "USER_CREATED publish")
    welcome = _one(spans, "greeter.welcome_new_user process")
    email_task = _one(spans, "GREET send")
    email = _one(spans, "greeter.greet process")
    trace_id = server.context.trace_id
    assert {s.context.trace_id for s in (created, welcome, email_task, email)} == {trace_id}
    assert server.kind is SpanKind.SERVER and _parent_of(created) == server.context.span_id
    assert carried.split("-")[2] == f"{created.context.span_id:016x}"
    assert _parent_of(welcome) == created.context.span_id  # across the stream, SNS and SQS
    assert _parent_of(email) == email_task.context.span_id
    assert {
        s.attributes["tctf.correlation_id"] for s in (server, welcome, email) if s.attributes
    } == {"signup-on-lambda"}
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    in_trace = {s.name for s in clients if s.context.trace_id == trace_id}
    assert "DynamoDB.TransactWriteItems" in in_trace  # the sign-up's commit
    assert "SQS.SendMessageBatch" in in_trace  # the welcome handler's task
    # The stream relay's publish is a child of its invocation's span.
    [relay] = [s for s in spans if s.name == "users dynamodb invocation"]
    assert any(
        s.name == "SNS.PublishBatch" and _parent_of(s) == relay.context.span_id for s in spans
    )
    [invocation, _] = [s for s in spans if s.name == "greeter sqs invocation"]
    assert [link.context.span_id for link in invocation.links] == [created.context.span_id]


def test_a_sign_up_not_sampled_carries_its_trace_id_unsampled_across_outbox_sns_and_sqs(
    moto_endpoint: str, greeter: Domain
) -> None:
    app = f"trc{next(_apps)}"
    asyncio.run(up(moto_endpoint, "sns", [users, greeter], app=app))
    topology = Topology.from_domains([users, greeter], app=app)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name=REGION)
    users_function = _function(moto_endpoint, app, "users", provider)
    messaging_function = _function(moto_endpoint, app, "greeter", provider)
    try:
        response = users_function(_sign_up_event("signup-unsampled"), LambdaContext())
        assert response is not None and response["statusCode"] == 201, response
        table = topology.tables["users"]
        items = dynamodb.scan(TableName=table.name, ConsistentRead=True)["Items"]
        outbox = [
            {key: boto3.dynamodb.types.TypeDeserializer().deserialize(v) for key, v in i.items()}
            for i in items
            if i["SK"]["S"].startswith("EVENT#")
        ]
        relayed = users_function(_stream_event(moto_endpoint, table, outbox), LambdaContext())
        assert relayed == {"batchItemFailures": []}
        [delivered] = _drain(sqs, topology.require_queue("greeter", "events").name)
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{topology.require_queue('greeter', 'events').name}"
        answer = messaging_function(lambda_sqs_event([delivered], arn, REGION), LambdaContext())
        assert answer == {"batchItemFailures": []}
        [task] = _drain(sqs, topology.require_queue("greeter", "tasks").name)
    finally:
        users_function.close()
        messaging_function.close()

    carried = delivered["MessageAttributes"]["traceparent"]["StringValue"]
    assert Envelope.decode(delivered["Body"]).traceparent == carried
    assert not int(carried[53:55], 16) & 1, "carried, flagged not sampled"
    handed_on = task["MessageAttributes"]["traceparent"]["StringValue"]
    assert Envelope.decode(task["Body"]).traceparent == handed_on
    assert handed_on[3:35] == carried[3:35], "the same trace, through the welcome handler"
    assert not int(handed_on[53:55], 16) & 1
    assert exporter.get_finished_spans() == ()


PRODUCER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _traced_body(sku: str) -> str:
    raw = json.loads(body(sku))
    raw["traceparent"] = PRODUCER
    return json.dumps(raw)


def _sns(sku: str) -> dict[str, Any]:
    event = sample(POWERTOOLS / "snsEvent.json")
    record = event["Records"][0]["Sns"]
    record["Message"] = _traced_body(sku)
    record["MessageAttributes"] = {"traceparent": {"Type": "String", "Value": PRODUCER}}
    return event


def _eventbridge(sku: str) -> dict[str, Any]:
    event = sample(POWERTOOLS / "eventBridgeEvent.json")
    event["detail"] = json.loads(_traced_body(sku))
    event["detail-type"] = event["detail"]["type"]
    return event


@pytest.mark.parametrize("make_event", [_sns, _eventbridge], ids=["sns", "eventbridge"])
def test_an_sns_or_eventbridge_invocation_continues_and_links_its_producers_trace(
    make_event: Any, inventory: Inventory
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    app = LambdaApp(
        inventory.domain,
        Published(),
        dead_letters=MemoryDeadLetters(),
        dead_letter_queue="tctf-inventory-events-dlq",
        tracer_provider=provider,
    )
    try:
        assert app(make_event("traced"), LambdaContext()) is None
    finally:
        app.close()
    spans = exporter.get_finished_spans()
    handler = _one(spans, "inventory.reserve process")
    [invocation] = [s for s in spans if s.name.endswith(" invocation")]
    assert f"{handler.context.trace_id:032x}" == PRODUCER.split("-")[1]
    assert _parent_of(handler) == int(PRODUCER.split("-")[2], 16)
    assert [f"{link.context.span_id:016x}" for link in invocation.links] == [PRODUCER.split("-")[2]]
