"""SQS batches: AWS's sample events in, partial batch responses out, parked records to the DLQ."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest

from adapters.aws.dead_letters import (
    REASON_ATTRIBUTE,
    RECORD_ATTRIBUTE,
    SOURCE_ATTRIBUTE,
    Letter,
    MemoryDeadLetters,
    SqsDeadLetters,
    sqs_entry,
)
from adapters.aws.entries import entry_size
from adapters.aws.session import AwsClients, AwsSettings
from adapters.lambda_.app import LambdaApp
from bus.dispatch import DEADLINE_REASON
from bus.limits import SQS

from .conftest import (
    LAMBDA_GO,
    LOCALSTACK,
    POWERTOOLS,
    Inventory,
    LambdaContext,
    Published,
    body,
    sample,
)


def test_powertools_sqs_sample_with_envelopes_calls_the_handler_per_record(
    app: LambdaApp, inventory: Inventory, published: Published
) -> None:
    event = sample(POWERTOOLS / "sqsEvent.json")
    for index, record in enumerate(event["Records"]):
        record["body"] = body(f"sku-{index}", f"evt-{index}")

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert [e.sku for e in inventory.handled] == ["sku-0", "sku-1"]
    assert [e.data.sku for e in published.events] == ["sku-0", "sku-1"]  # type: ignore[union-attr]
    assert {e.correlationid for e in published.events} == {"corr-1"}


def test_powertools_sqs_sample_bodies_are_parked_in_the_queues_dlq_with_the_reason(
    app: LambdaApp, inventory: Inventory, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(POWERTOOLS / "sqsEvent.json")

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert inventory.handled == []
    letters = dead_letters.queues["my-queue-dlq"]
    assert [(x.record_id, x.body) for x in letters] == [
        ("059f36b4-87a3-44ab-83d2-661975830a7d", "Test message."),
        ("2e1424d4-f796-459a-8184-9c92662be6da", '{"message": "foo1"}'),
    ]
    assert letters[0].reason.startswith("record body is not JSON")
    assert letters[1].reason.startswith("envelope lacks required attributes: id, source")
    assert letters[0].source == "arn:aws:sqs:us-east-2:123456789012:my-queue"
    assert letters[0].attributes()[REASON_ATTRIBUTE]["StringValue"] == letters[0].reason


def test_parked_records_are_reported_failed_when_their_dlq_refuses_them(
    inventory: Inventory, published: Published
) -> None:
    refusing = MemoryDeadLetters(unavailable=["my-queue-dlq"])
    app = LambdaApp(inventory.domain, published, dead_letters=refusing)
    try:
        response = app(sample(POWERTOOLS / "sqsEvent.json"), LambdaContext())
    finally:
        app.close()
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"},
            {"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"},
        ]
    }


def test_parked_records_are_reported_failed_with_a_logged_reason_without_a_dlq_sender(
    inventory: Inventory, published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    app = LambdaApp(inventory.domain, published)
    try:
        response = app(sample(LAMBDA_GO / "sqs-event.json"), LambdaContext())
    finally:
        app.close()
    assert response == {"batchItemFailures": [{"itemIdentifier": "MessageID_1"}]}
    assert "record MessageID_1 parked (not dead-lettered, retried): record body is not JSON" in (
        caplog.text
    )


def test_aws_lambda_go_sample_carries_the_receive_count(
    app: LambdaApp, inventory: Inventory
) -> None:
    event = sample(LAMBDA_GO / "sqs-event.json")
    event["Records"][0]["body"] = body()

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(inventory.handled) == 1


def test_sns_notification_in_sqs_with_raw_delivery_off_is_unwrapped(
    app: LambdaApp, inventory: Inventory
) -> None:
    event = sample(POWERTOOLS / "snsSqsEvent.json")
    notification = json.loads(event["Records"][0]["body"])
    notification["Message"] = body("from-sns")
    event["Records"][0]["body"] = json.dumps(notification)

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert [e.sku for e in inventory.handled] == ["from-sns"]


def test_sns_sqs_sample_message_is_parked_as_not_an_envelope(
    app: LambdaApp, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(POWERTOOLS / "snsSqsEvent.json")

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    (letter,) = dead_letters.queues["powertools265-dlq"]
    assert letter.body == event["Records"][0]["body"]  # the notification, intact
    assert letter.reason.startswith("envelope lacks required attributes")


def test_raw_sns_delivery_and_tasks_sent_to_sqs_are_the_envelope_itself(
    app: LambdaApp, inventory: Inventory
) -> None:
    event = sample(LAMBDA_GO / "sqs-event.json")
    event["Records"][0]["body"] = body("raw")

    app(event, LambdaContext())
    assert [e.sku for e in inventory.handled] == ["raw"]


def test_eventbridge_event_delivered_to_sqs_is_read_from_its_detail(
    app: LambdaApp, inventory: Inventory
) -> None:
    snapshot = json.loads((LOCALSTACK / "events/test_events_targets.snapshot.json").read_text())
    key = next(
        k for k in snapshot if k.endswith("TestEventsTargetSqs::test_put_events_with_target_sqs")
    )
    delivered = snapshot[key]["recorded-content"]["message"][0]["Body"]
    delivered["detail"] = json.loads(body("from-eventbridge"))
    delivered["detail-type"] = delivered["detail"]["type"]
    event = sample(POWERTOOLS / "sqsEvent.json")
    event["Records"] = event["Records"][:1]
    event["Records"][0]["body"] = json.dumps(delivered)

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert [e.sku for e in inventory.handled] == ["from-eventbridge"]


def test_localstack_recorded_sqs_records_are_answered_by_message_id(app: LambdaApp) -> None:
    snapshot = json.loads(
        (
            LOCALSTACK / "lambda_/event_source_mapping/test_lambda_integration_sqs.snapshot.json"
        ).read_text()
    )
    key = next(k for k in snapshot if k.endswith("::test_report_batch_item_failures"))
    event = snapshot[key]["recorded-content"]["first_invocation"]["Messages"][0]["Body"]["event"]
    for record in event["Records"]:  # Lambda delivers bodies as strings
        record["body"] = body(f"sku-{record['body']['message']}")
    record_ids = [r["messageId"] for r in event["Records"]]

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(record_ids) == len(set(record_ids)) > 1


def test_only_the_failed_record_of_ten_is_reported(app: LambdaApp, inventory: Inventory) -> None:
    event = sample(POWERTOOLS / "sqsEvent.json")
    template = event["Records"][1]
    event["Records"] = [
        {**template, "messageId": f"m-{i}", "body": body("boom" if i == 6 else f"s-{i}", f"e-{i}")}
        for i in range(10)
    ]

    assert app(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m-6"}]}
    assert [e.sku for e in inventory.handled] == [f"s-{i}" for i in range(10) if i != 6]


def test_records_past_the_deadline_are_reported_failed_not_dropped(
    app: LambdaApp, inventory: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    event = sample(POWERTOOLS / "sqsEvent.json")
    template = event["Records"][1]
    event["Records"] = [
        {**template, "messageId": f"m-{i}", "body": body(f"s-{i}", f"e-{i}")} for i in range(10)
    ]
    # Plenty of time for three records, then under the 2000 ms safety margin.
    context = LambdaContext([9000, 6000, 3000, 1500])

    response = app(event, context)

    assert [e.sku for e in inventory.handled] == ["s-0", "s-1", "s-2"]
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{i}"} for i in range(3, 10)]}
    assert DEADLINE_REASON in caplog.text


async def test_parked_records_over_a_mebibyte_in_all_reach_the_dlq_in_several_batches(
    moto_endpoint: str,
) -> None:
    """SendMessageBatch takes at most 1 MiB in all: ten 200 KB letters need two calls."""
    settings = AwsSettings(endpoint_url=moto_endpoint, region_name="us-east-1", sdk="botocore")
    queue = f"big-{uuid.uuid4().hex[:8]}-dlq"
    async with AwsClients(settings, "sqs") as clients:
        url = (await clients.sqs.create_queue(QueueName=queue))["QueueUrl"]

        async def opened() -> Any:
            return clients.sqs

        letters = [
            Letter(f"m{i}", url, "not json " + "x" * 200_000, "record body is not JSON")
            for i in range(10)
        ]
        stored = await SqsDeadLetters(opened).send(letters)
        counts = await clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )

    assert stored == {f"m{i}" for i in range(10)}
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == "10"


@pytest.mark.parametrize("spare", [0, 40, 120, 4096])
def test_a_parked_record_near_the_size_limit_keeps_its_body_and_what_reason_fits(
    spare: int,
) -> None:
    """SQS counts attributes in the 1 MiB limit: a body delivered close to it would be
    refused with its reason beside it, and reach the DLQ only by redrive, with no reason."""
    body = "x" * (SQS.max_message_bytes - spare)
    reason = "unknown event type 'NOT_A_TYPE' " + "é" * 2000  # multi-byte, longer than fits
    letter = Letter("m-1", "q-dlq", body, reason, source="arn:aws:sqs:us-east-1:1:q")

    entry = sqs_entry(letter)

    assert entry["MessageBody"] == body
    assert entry_size(entry) <= SQS.max_message_bytes
    attributes = entry["MessageAttributes"]
    kept = attributes.get(REASON_ATTRIBUTE, {}).get("StringValue", "")
    assert reason.startswith(kept)
    if spare >= 40:  # the record id (3 bytes + name + type) goes whole, before the reason
        assert attributes[RECORD_ATTRIBUTE]["StringValue"] == "m-1"
    if spare >= 120:  # then the source, and as much of the reason as fits
        assert attributes[SOURCE_ATTRIBUTE]["StringValue"] == letter.source
        assert kept
    if spare >= 4096:
        assert len(kept) == 1024


def test_sns_notification_whose_type_attribute_is_not_its_bodys_type_is_parked(
    app: LambdaApp, inventory: Inventory, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(POWERTOOLS / "snsSqsEvent.json")
    notification = json.loads(event["Records"][0]["body"])
    notification["Message"] = body("from-sns")
    notification["MessageAttributes"] = {"type": {"Type": "String", "Value": "ITEM_SHIPPED"}}
    event["Records"][0]["body"] = json.dumps(notification)

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert inventory.handled == []
    (letter,) = dead_letters.queues["powertools265-dlq"]
    assert letter.reason.startswith("record was routed as 'ITEM_SHIPPED'")


def _dead_lettered(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("dead-lettered")]


@pytest.mark.parametrize(("receive_count", "logged"), [(4, False), (5, True)])
def test_a_record_failing_its_last_receive_logs_that_sqs_dead_letters_it(
    app: LambdaApp, caplog: pytest.LogCaptureFixture, receive_count: int, logged: bool
) -> None:
    event = sample(POWERTOOLS / "sqsEvent.json")
    [record] = event["Records"][1:]
    event["Records"] = [record]
    record["body"] = body("boom")
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)

    assert app(event, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": record["messageId"]}]
    }
    lines = _dead_lettered(caplog)
    assert len(lines) == int(logged)
    for line in lines:
        assert line.levelno == logging.ERROR
        assert vars(line)["service"] == "inventory"
        assert (vars(line)["queue"], vars(line)["dlq"]) == ("my-queue", "my-queue-dlq")
        assert vars(line)["message_id"] == record["messageId"]
        assert vars(line)["event_type"] == "ITEM_RESERVED"
        assert vars(line)["correlation_id"] == "corr-1"
        assert vars(line)["receive_count"] == 5
        assert "max_receive_count 5" in vars(line)["reason"]
        assert "warehouse unreachable" in vars(line)["reason"]


def test_a_record_the_function_parks_logs_the_same_dead_lettered_line(
    app: LambdaApp, caplog: pytest.LogCaptureFixture
) -> None:
    event = sample(POWERTOOLS / "sqsEvent.json")

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    lines = _dead_lettered(caplog)
    assert [vars(line)["message_id"] for line in lines] == [
        r["messageId"] for r in event["Records"]
    ]
    for line in lines:
        assert line.levelno == logging.ERROR and vars(line)["service"] == "inventory"
        assert (vars(line)["queue"], vars(line)["dlq"]) == ("my-queue", "my-queue-dlq")
        assert vars(line)["receive_count"] == 1 and vars(line)["reason"]
        assert vars(line)["event_type"] is None and vars(line)["correlation_id"] is None
