"""AWS transports on the session's moto server, each test with its own resource names."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager

import anyio
import pytest

from adapters.aws.eventbridge import eventbridge
from adapters.aws.local import teach_moto_or_in_message_body
from adapters.aws.session import AwsSettings
from adapters.aws.sns_sqs import sns_sqs
from adapters.lambda_.sqs import sqs_batch_handler
from bus import Domain
from bus.memory import in_memory
from bus.runtime import TransportFactory
from tctf.aws import run_aws
from tctf.platform import Platform
from tests.delivery_log import listening

#: Each AWS transport's factory; the tests compose it with the Lambda SQS handler, as the
#: platform does.
FACTORIES: dict[str, Callable[..., TransportFactory]] = {
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
    return (
        in_memory(seed=3)
        if name == "memory"
        else FACTORIES[name](settings, handler_for=sqs_batch_handler)
    )


class DeliveryLog(logging.Handler):
    """The delivery lines `bus.observability.log_outcome` writes, as (message, handler)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str]] = []
        self._changed: anyio.Event | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), str(getattr(record, "handler", ""))))
        if self._changed is not None:
            self._changed.set()

    def handled(self) -> list[str]:
        return [handler for line, handler in self.lines if line.startswith("handled")]

    async def wait_handled(self, expected: set[str]) -> None:
        """Return once every expected handler has logged a successful delivery."""
        while not expected <= set(self.handled()):
            self._changed = anyio.Event()
            await self._changed.wait()


@pytest.fixture
def deliveries() -> Iterator[DeliveryLog]:
    with listening(DeliveryLog()) as handler:
        yield handler


@asynccontextmanager
async def aws_platform(
    domains: Sequence[Domain], endpoint_url: str | None, transport: str, app: str
) -> AsyncIterator[Platform]:
    """`tctf run --aws` in a task group, yielding its platform once it serves."""
    started: list[Platform] = []
    ready = anyio.Event()

    def on_ready(platform: Platform) -> None:
        started.append(platform)
        ready.set()

    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: run_aws(list(domains), endpoint_url, transport, None, app=app, ready=on_ready)
        )
        with anyio.fail_after(20):
            await ready.wait()
        yield started[0]
        group.cancel_scope.cancel()
