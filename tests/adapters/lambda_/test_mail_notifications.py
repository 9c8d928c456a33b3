"""SES's bounce and complaint notifications as SNS invokes the sending domain's function:
each reaches the INTERNAL route the domain declared for them (`Mail(notifications=...)`);
notifications from any other topic stay envelopes for the dispatcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.lambda_.app import LambdaApp
from adapters.lambda_.errors import DeliveryFailed
from bus.storage.memory import InMemoryTable
from bus.topology import Topology
from domains.messaging_consumers.app import domain as messaging_consumers
from tests.domains.mail import SES_FIXTURES

from .conftest import POWERTOOLS, LambdaContext, Published, sample

TOPIC = "arn:aws:sns:us-east-1:123456789012:tctf-prod-messaging_consumers-mail-events"


def invocation(document: bytes, topic: str = TOPIC) -> dict[str, Any]:
    """SNS's Lambda event carrying `document` (the HTTP(S) notification's fields)."""
    event = sample(POWERTOOLS / "snsEvent.json")
    record = event["Records"][0]
    record["Sns"].update({**json.loads(document), "TopicArn": topic})
    record["EventSubscriptionArn"] = f"{topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
    return event


@pytest.fixture
def table() -> InMemoryTable:
    topology = Topology.from_domains([messaging_consumers])
    return InMemoryTable(topology.tables["messaging_consumers"])


@pytest.fixture
def app(table: InMemoryTable) -> Iterator[LambdaApp]:
    app = LambdaApp(messaging_consumers, Published(), table=table)
    yield app
    app.close()


def suppressed(table: InMemoryTable) -> list[str]:
    return sorted(str(i["PK"]) for i in table.scan() if str(i["PK"]).startswith("SUPPRESSED#"))


def test_a_bounce_from_the_mail_topic_suppresses_its_recipient(
    app: LambdaApp, table: InMemoryTable
) -> None:
    bounce = (SES_FIXTURES / "bounce-notification.json").read_bytes()

    assert app(invocation(bounce), LambdaContext()) is None
    assert suppressed(table) == ["SUPPRESSED#jane@example.com"]
    # SNS delivers at least once: the same notification again changes nothing.
    assert app(invocation(bounce), LambdaContext()) is None
    assert suppressed(table) == ["SUPPRESSED#jane@example.com"]


def test_a_malformed_notification_raises_so_lambda_retries_then_parks_it(
    app: LambdaApp, table: InMemoryTable
) -> None:
    document = json.dumps(
        {"Type": "Notification", "MessageId": "m-1", "TopicArn": TOPIC, "Message": "{}"}
    ).encode()

    with pytest.raises(DeliveryFailed, match=r"m-1: /mail/notifications answered 422"):
        app(invocation(document), LambdaContext())
    assert table.scan() == []


def test_a_notification_from_another_topic_is_an_envelope_for_the_dispatcher(
    app: LambdaApp, table: InMemoryTable
) -> None:
    bounce = (SES_FIXTURES / "bounce-notification.json").read_bytes()
    other = "arn:aws:sns:us-east-1:123456789012:tctf-prod-events"

    with pytest.raises(DeliveryFailed, match="envelope lacks required attributes"):
        app(invocation(bounce, other), LambdaContext())
    assert suppressed(table) == []
