"""SNS and EventBridge invoking the function directly: one record, no partial answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.aws.dead_letters import MemoryDeadLetters
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.errors import DeliveryFailed

from .conftest import LAMBDA_GO, POWERTOOLS, Inventory, LambdaContext, Published, body, sample

SNS_SAMPLES = [POWERTOOLS / "snsEvent.json", LAMBDA_GO / "sns-event.json"]


@pytest.mark.parametrize("path", SNS_SAMPLES, ids=lambda p: p.parent.parent.name)
def test_sns_sample_with_an_envelope_calls_the_handler_and_answers_nothing(
    path: Path, app: LambdaApp, inventory: Inventory
) -> None:
    event = sample(path)
    event["Records"][0]["Sns"]["Message"] = body("via-sns")

    assert app(event, LambdaContext()) is None
    assert [e.sku for e in inventory.handled] == ["via-sns"]


@pytest.mark.parametrize("path", SNS_SAMPLES, ids=lambda p: p.parent.parent.name)
def test_sns_sample_message_is_dead_lettered_with_the_reason(
    path: Path, app: LambdaApp, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(path)

    assert app(event, LambdaContext()) is None
    (letter,) = dead_letters.queues["tctf-inventory-events-dlq"]
    assert letter.record_id == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert letter.body == "Hello from SNS!"
    assert letter.reason.startswith("record body is not JSON")
    assert letter.source == event["Records"][0]["Sns"]["TopicArn"]


def test_sns_record_whose_handler_fails_raises_so_lambda_retries(app: LambdaApp) -> None:
    event = sample(POWERTOOLS / "snsEvent.json")
    event["Records"][0]["Sns"]["Message"] = body("boom")

    with pytest.raises(DeliveryFailed, match=r"95df01b4.*RuntimeError: warehouse unreachable"):
        app(event, LambdaContext())


def test_sns_record_parked_without_a_dlq_raises(inventory: Inventory) -> None:
    app = LambdaApp(inventory.domain, Published())
    try:
        with pytest.raises(DeliveryFailed, match="record body is not JSON"):
            app(sample(POWERTOOLS / "snsEvent.json"), LambdaContext())
    finally:
        app.close()


def test_eventbridge_sample_with_an_envelope_detail_calls_the_handler(
    app: LambdaApp, inventory: Inventory
) -> None:
    event = sample(POWERTOOLS / "eventBridgeEvent.json")
    event["detail"] = json.loads(body("via-bus"))
    event["detail-type"] = event["detail"]["type"]  # what the producer's PutEvents sets

    assert app(event, LambdaContext()) is None
    assert [e.sku for e in inventory.handled] == ["via-bus"]


def test_eventbridge_event_whose_detail_type_is_not_its_envelopes_type_is_parked(
    app: LambdaApp, inventory: Inventory, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(POWERTOOLS / "eventBridgeEvent.json")
    event["detail"] = json.loads(body("via-bus"))

    assert app(event, LambdaContext()) is None
    assert inventory.handled == []
    (letter,) = dead_letters.queues["tctf-inventory-events-dlq"]
    assert f"routed as {event['detail-type']!r}" in letter.reason


def test_eventbridge_sample_detail_is_dead_lettered_whole(
    app: LambdaApp, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(POWERTOOLS / "eventBridgeEvent.json")

    assert app(event, LambdaContext()) is None
    (letter,) = dead_letters.queues["tctf-inventory-events-dlq"]
    assert letter.record_id == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert json.loads(letter.body) == event
    assert letter.reason.startswith("envelope lacks required attributes")


def test_eventbridge_event_of_a_type_the_domain_does_not_handle_is_parked(
    app: LambdaApp, dead_letters: MemoryDeadLetters
) -> None:
    event = sample(POWERTOOLS / "eventBridgeEvent.json")
    detail = json.loads(body())
    detail["type"] = "ITEM_SHIPPED"
    event["detail"] = detail
    event["detail-type"] = "ITEM_SHIPPED"

    app(event, LambdaContext())
    (letter,) = dead_letters.queues["tctf-inventory-events-dlq"]
    assert letter.reason == (
        "domain inventory has no handler for 'ITEM_SHIPPED' (handles ITEM_RESERVED)"
    )
