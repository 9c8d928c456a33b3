"""Telling the event's source from its shape; anything else is a clear error."""

from __future__ import annotations

import asyncio

import pytest

from adapters.lambda_.app import LambdaApp
from adapters.lambda_.errors import UnsupportedEvent
from adapters.lambda_.sources import event_source
from bus import Context, Domain
from bus.dispatch import DEADLINE_REASON, Dispatcher, Record

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


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (POWERTOOLS / "sqsEvent.json", "sqs"),
        (POWERTOOLS / "snsSqsEvent.json", "sqs"),
        (POWERTOOLS / "sqsDlqTriggerEvent.json", "sqs"),
        (LAMBDA_GO / "sqs-event.json", "sqs"),
        (POWERTOOLS / "snsEvent.json", "sns"),
        (LAMBDA_GO / "sns-event.json", "sns"),
        (POWERTOOLS / "eventBridgeEvent.json", "eventbridge"),
        (SCHEDULED_EVENT, "schedule"),
        (POWERTOOLS / "apiGatewayProxyV2Event.json", "http"),
        (LAMBDA_GO / "apigw-v2-request-iam.json", "http"),
        (POWERTOOLS / "dynamoStreamEvent.json", "dynamodb"),
        (LAMBDA_GO / "dynamodb-time-window-event.json", "dynamodb"),
    ],
    ids=lambda v: getattr(v, "name", v),
)
def test_sample_events_are_recognised(path, source) -> None:  # type: ignore[no-untyped-def]
    assert event_source(sample(path)) == source


def test_only_eventbridges_own_scheduled_event_is_a_schedule() -> None:
    tick = sample(SCHEDULED_EVENT)
    domain_event = {**tick, "source": "orders", "detail": {"id": "evt-1"}}
    other_aws_event = {**tick, "detail-type": "EC2 Instance State-change Notification"}

    assert event_source(tick) == "schedule"
    assert event_source(domain_event) == event_source(other_aws_event) == "eventbridge"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"hello": "world"}, r"unrecognised Lambda event \(top-level keys: hello\)"),
        ([1, 2], "a Lambda event is a JSON object, got list"),
        ({"Records": []}, "Records list is empty"),
        ({"Records": [{"eventSource": "aws:kinesis"}]}, "records from 'aws:kinesis'"),
        ({"httpMethod": "GET", "path": "/"}, "REST API .payload format 1.0."),
        (
            {"version": "1.0", "requestContext": {"http": {}}},
            "payload format '1.0' is not supported",
        ),
    ],
)
def test_unexpected_shapes_raise_a_clear_error(event, message, app: LambdaApp) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedEvent, match=message):
        app(event, LambdaContext())


def test_warm_invocations_reuse_one_event_loop(published: Published) -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    domain = Domain("loops")

    @domain.on(ItemReserved)
    async def note(event: ItemReserved, ctx: Context) -> None:
        loops.append(asyncio.get_running_loop())

    app = LambdaApp(domain, published)
    try:
        for index in range(3):
            event = sample(LAMBDA_GO / "sqs-event.json")
            event["Records"][0]["body"] = body(id=f"e{index}")
            assert app(event, LambdaContext()) == {"batchItemFailures": []}
    finally:
        app.close()
    assert len(loops) == 3 and len(set(map(id, loops))) == 1


async def test_dispatcher_deadline_hands_back_every_record_not_started(
    published: Published,
) -> None:
    calls: list[str] = []
    domain = Domain("deadline")

    @domain.on(ItemReserved)
    async def note(event: ItemReserved, ctx: Context) -> None:
        calls.append(event.sku)

    asked = iter([False, False, True])
    records = [Record(f"r{i}", body(f"s{i}", f"e{i}")) for i in range(5)]

    result = await Dispatcher(domain, published).dispatch(records, deadline=lambda: next(asked))

    assert calls == ["s0", "s1"]
    assert result.failed == {f"r{i}": DEADLINE_REASON for i in (2, 3, 4)}
    assert result.parked == {}
