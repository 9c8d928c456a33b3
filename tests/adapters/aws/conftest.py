"""AWS transports on the session's moto server, each test with its own resource names."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from adapters.aws.eventbridge import eventbridge
from adapters.aws.local import teach_moto_or_in_message_body
from adapters.aws.session import AwsSettings
from adapters.aws.sns_sqs import sns_sqs
from bus.runtime import TransportFactory
from bus.testing import in_memory

FACTORIES: dict[str, Callable[[AwsSettings], TransportFactory]] = {
    "sns_sqs": sns_sqs,
    "eventbridge": eventbridge,
}


@pytest.fixture
def settings(moto_endpoint: str) -> AwsSettings:
    teach_moto_or_in_message_body()  # moto 5 cannot match `$or` on a message body
    return AwsSettings(endpoint_url=moto_endpoint, retry_deadline=10.0)


@pytest.fixture
def app() -> str:
    """A fresh app name: every resource name starts with it, so tests never share a queue."""
    return f"t{uuid.uuid4().hex[:10]}"


def factory(name: str, settings: AwsSettings) -> TransportFactory:
    return in_memory(seed=3) if name == "memory" else FACTORIES[name](settings)
