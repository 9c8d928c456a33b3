"""DynamoDB Streams: new outbox items are published in order; failures by SequenceNumber."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.aws.dead_letters import MemoryDeadLetters
from adapters.aws.errors import PublishFailed
from adapters.aws.outbox_letters import parked_outbox_envelope
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.errors import UnreadableStreamRecord, UnsupportedEvent
from adapters.lambda_.streams import from_attribute_value, outbox_relay, stream_records
from bus.envelope import Envelope
from bus.errors import MalformedEnvelope

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

STREAM_SAMPLES = [POWERTOOLS / "dynamoStreamEvent.json", LAMBDA_GO / "dynamodb-event.json"]


def _localstack_stream_event() -> dict:  # type: ignore[type-arg]
    snapshot = json.loads(
        (
            LOCALSTACK
            / "lambda_/event_source_mapping/test_lambda_integration_dynamodbstreams.snapshot.json"
        ).read_text()
    )
    key = next(k for k in snapshot if k.endswith("::test_dynamodb_report_batch_item_failures"))
    event: dict = snapshot[key]["recorded-content"]["dynamodb_records"]  # type: ignore[type-arg]
    return event


def _outbox_image(envelope_body: str, seq: int = 1) -> dict:  # type: ignore[type-arg]
    """An outbox event item as `UnitOfWork` writes it, in the stream's DynamoDB JSON."""
    return {
        "PK": {"S": "OUTBOX#ORDER#1"},
        "SK": {"S": f"EVENT#{seq:020d}"},
        "body": {"B": base64.b64encode(envelope_body.encode()).decode()},
        "event_id": {"S": f"evt-{seq}"},
        "seq": {"N": str(seq)},
    }


def _with_outbox(event: dict, index: int, image: dict) -> dict:  # type: ignore[type-arg]
    record = event["Records"][index]
    record["eventName"] = "INSERT"
    record["dynamodb"]["NewImage"] = image
    return event


@pytest.mark.parametrize("path", STREAM_SAMPLES, ids=lambda p: p.parent.parent.name)
def test_stream_samples_of_ordinary_items_publish_nothing_and_succeed(
    path: Path, app: LambdaApp, published: Published
) -> None:
    assert app(sample(path), LambdaContext()) == {"batchItemFailures": []}
    assert published.events == published.tasks == []


def test_localstack_recorded_stream_records_are_read() -> None:
    records = stream_records(_localstack_stream_event())
    assert [r.new_image for r in records][:2] == [
        {"my_partition_key": "testId0", "should_fail": False},
        {"my_partition_key": "testId1", "should_fail": False},
    ]
    assert {r.event_name for r in records} == {"INSERT"}


def test_attribute_values_read_as_the_storage_port_reads_them() -> None:
    (_, second) = stream_records(sample(LAMBDA_GO / "dynamodb-event.json"))
    image = second.new_image
    assert image is not None
    assert image["IntegerNumber"] == 123 and image["FloatNumber"] == Decimal("123.45")
    assert image["Map"] == {"Name": "Joe", "Age": 35}
    assert image["List"] == ["Cookies", "Coffee", Decimal("3.14159")]
    assert image["NumberSet"] == {1234, Decimal("567.8")}
    assert image["Binary"] == b"\x00\x01*A" and image["Null"] is None
    assert image["Boolean"] is True and image["EmptyStringSet"] == set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"X": "1"}, "unknown DynamoDB attribute type 'X'"),
        ({"S": "a", "N": "1"}, r"exactly one type, not \['N', 'S'\]"),
        ({}, r"exactly one type, not \[\]"),
    ],
)
def test_an_unreadable_attribute_value_is_an_unsupported_event(
    value: dict[str, str], message: str
) -> None:
    with pytest.raises(UnreadableStreamRecord, match=message) as raised:
        from_attribute_value(value)
    assert isinstance(raised.value, UnsupportedEvent), "caught with every unreadable event"


def test_new_outbox_item_is_published(app: LambdaApp, published: Published) -> None:
    event = _with_outbox(sample(POWERTOOLS / "dynamoStreamEvent.json"), 0, _outbox_image(body()))

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert [(e.id, e.type, e.data) for e in published.events] == [
        ("evt-1", "ITEM_RESERVED", {"sku": "A-1", "quantity": 1})
    ]


def test_outbox_item_in_the_aws_lambda_go_sample_is_published(
    app: LambdaApp, published: Published
) -> None:
    event = _with_outbox(sample(LAMBDA_GO / "dynamodb-event.json"), 1, _outbox_image(body()))

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert [e.id for e in published.events] == ["evt-1"] and published.tasks == []


async def test_relay_deletes_the_item_it_published(published: Published) -> None:
    deleted: list[dict] = []  # type: ignore[type-arg]

    async def delete(key: dict) -> None:  # type: ignore[type-arg]
        deleted.append(key)

    event = _with_outbox(sample(POWERTOOLS / "dynamoStreamEvent.json"), 0, _outbox_image(body()))
    (record, _) = stream_records(event)
    await outbox_relay(published, delete)(record)

    assert [e.id for e in published.events] == ["evt-1"]
    assert deleted == [{"Id": 101}]


def test_modified_outbox_item_is_not_published_again(app: LambdaApp, published: Published) -> None:
    event = _with_outbox(sample(POWERTOOLS / "dynamoStreamEvent.json"), 1, _outbox_image(body()))
    event["Records"][1]["eventName"] = "MODIFY"

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    assert published.events == []


def test_malformed_outbox_item_goes_to_the_dlq_and_the_rest_is_published(
    app: LambdaApp, published: Published, dead_letters: MemoryDeadLetters
) -> None:
    event = _localstack_stream_event()
    _with_outbox(event, 0, _outbox_image("{not json"))
    _with_outbox(event, 1, _outbox_image(body(id="evt-2"), seq=2))

    assert app(event, LambdaContext()) == {"batchItemFailures": []}
    (letter,) = dead_letters.queues["tctf-inventory-events-dlq"]
    assert letter.record_id == "<sequence-number:1>"
    assert letter.reason.startswith("record body is not JSON")
    assert [e.id for e in published.events] == ["evt-2"]


def test_malformed_outbox_item_without_a_dlq_stops_the_batch_at_its_sequence_number(
    inventory: Inventory, published: Published
) -> None:
    event = _localstack_stream_event()
    _with_outbox(event, 1, _outbox_image("[]"))
    _with_outbox(event, 2, _outbox_image(body(id="evt-3"), seq=3))
    app = LambdaApp(inventory.domain, published)
    try:
        response = app(event, LambdaContext())
    finally:
        app.close()

    assert response == {"batchItemFailures": [{"itemIdentifier": "<sequence-number:2>"}]}
    assert published.events == []  # Lambda resumes at the failed record: nothing skipped


def test_stream_record_past_the_deadline_is_retried_from_its_sequence_number(
    app: LambdaApp, published: Published
) -> None:
    event = _localstack_stream_event()
    for index in range(3):
        _with_outbox(event, index, _outbox_image(body(id=f"e{index}"), seq=index + 1))

    response = app(event, LambdaContext([5000, 5000, 100]))

    assert response == {"batchItemFailures": [{"itemIdentifier": "<sequence-number:3>"}]}
    assert [e.id for e in published.events] == ["e0", "e1"]


class RefusedBySender(Published):
    """A publisher whose service refuses one envelope as the sender's fault, every time."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused
        self.attempts = 0

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if any(e.id == self.refused for e in envelopes):
            self.attempts += 1
            error = PublishFailed(
                "PublishBatch", {f"ITEM_RESERVED {self.refused}": "InvalidParameter: bad"}, 1
            )
            error.sender_fault = True
            raise error
        await super().publish(envelopes)


def test_an_outbox_item_refused_by_the_senders_fault_is_parked_not_retried_forever(
    inventory: Inventory, dead_letters: MemoryDeadLetters
) -> None:
    publisher = RefusedBySender("e0")
    event = _localstack_stream_event()
    for index in range(2):
        _with_outbox(event, index, _outbox_image(body(id=f"e{index}"), seq=index + 1))
    app = LambdaApp(
        inventory.domain,
        publisher,
        dead_letters=dead_letters,
        dead_letter_queue="tctf-inventory-events-dlq",
        outbox_dead_letter_queue="tctf-inventory-outbox-dlq",
    )
    try:
        response = app(event, LambdaContext())
    finally:
        app.close()

    assert response == {"batchItemFailures": []}
    assert publisher.attempts == 1 and [e.id for e in publisher.events] == ["e1"]
    (letter,) = dead_letters.queues["tctf-inventory-outbox-dlq"]
    assert letter.record_id == "<sequence-number:1>"
    assert "InvalidParameter: bad" in letter.reason


def test_an_outbox_item_whose_publish_ran_out_of_retries_is_retried(
    inventory: Inventory, dead_letters: MemoryDeadLetters
) -> None:
    class Throttled(Published):
        async def publish(self, envelopes: Sequence[Envelope]) -> None:
            raise PublishFailed("PublishBatch", {"ITEM_RESERVED e0": "Throttling: slow"}, 5)

    event = _with_outbox(_localstack_stream_event(), 0, _outbox_image(body(id="e0")))
    app = LambdaApp(
        inventory.domain,
        Throttled(),
        dead_letters=dead_letters,
        outbox_dead_letter_queue="tctf-inventory-outbox-dlq",
    )
    try:
        response = app(event, LambdaContext())
    finally:
        app.close()

    assert response == {"batchItemFailures": [{"itemIdentifier": "<sequence-number:1>"}]}
    assert dead_letters.queues == {}


class RefusingAll(Published):
    """A publisher whose service refuses every envelope as the sender's fault."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        failures = {f"{e.type} {e.id}": "InvalidParameter: bad" for e in envelopes}
        raise PublishFailed("PublishBatch", failures, 1, sender_fault=True)


def test_a_parked_outbox_letter_gives_back_the_envelope_it_could_not_publish(
    inventory: Inventory, dead_letters: MemoryDeadLetters
) -> None:
    """`tctf dlq redrive --purpose outbox` reads letters with the function's own decoding,
    whether the item held its envelope as bytes (as `UnitOfWork` writes it) or as text."""
    as_text = _outbox_image(body(id="e1"), seq=2)
    as_text["body"] = {"S": body(id="e1")}
    event = _localstack_stream_event()
    _with_outbox(event, 0, _outbox_image(body(id="e0")))
    _with_outbox(event, 1, as_text)
    _with_outbox(event, 2, _outbox_image("{not json", seq=3))
    app = LambdaApp(
        inventory.domain,
        RefusingAll(),
        dead_letters=dead_letters,
        outbox_dead_letter_queue="tctf-inventory-outbox-dlq",
    )
    try:
        assert app(event, LambdaContext()) == {"batchItemFailures": []}
    finally:
        app.close()

    first, second, unreadable = dead_letters.queues["tctf-inventory-outbox-dlq"]
    assert parked_outbox_envelope(first.body).encode() == body(id="e0").encode()
    assert parked_outbox_envelope(second.body).encode() == body(id="e1").encode()
    with pytest.raises(MalformedEnvelope) as raised:
        parked_outbox_envelope(unreadable.body)
    assert str(raised.value) == unreadable.reason


@pytest.mark.parametrize(
    ("letter", "reason"),
    [
        ("not json", "dead letter is not JSON"),
        ("[]", "dead letter is JSON list, not an outbox item"),
        ('{"PK": "USER#1", "SK": "PROFILE"}', "dead letter is not an outbox event item"),
    ],
)
def test_a_letter_that_is_no_outbox_item_is_malformed(letter: str, reason: str) -> None:
    with pytest.raises(MalformedEnvelope, match=reason):
        parked_outbox_envelope(letter)
