"""The endpoint goes away mid-run and comes back: publishers retry, pollers reconnect, and
every event published before or during the outage is handled.

What is simulated: moto server's HTTP listener is closed (connections refused) and opened
again on the same port. moto keeps its state in this process, so queues and messages
survive, as they survive a network outage or an endpoint blip on AWS. Not simulated: AWS
losing state (it does not), throttling, or a listener that accepts and then hangs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import anyio
import pytest

from adapters.aws.local import LocalEndpoint
from adapters.aws.session import AwsSettings
from bus import Context, Domain, DomainSettings, Event
from bus.clock import SystemClock
from bus.testing import Harness
from tests.adapters.aws.conftest import factory

# One record at a time, so that some wait in the queue through the outage.
PATIENT = DomainSettings(visibility_timeout=2.0, batch_size=1, concurrency=1, retry_attempts=1)


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[Collect]:
    collect = Collect()
    logger = logging.getLogger("adapters.aws")
    logger.addHandler(collect)
    try:
        yield collect
    finally:
        logger.removeHandler(collect)


async def until(condition: Callable[[], bool], what: str) -> None:
    """A bounded poll of real state (log lines written by the transport)."""
    with anyio.fail_after(20):
        while not condition():
            await anyio.sleep(0.02)


@pytest.mark.parametrize("transport", ["sns_sqs", "eventbridge"])
async def test_nothing_is_lost_when_the_endpoint_goes_away_and_comes_back(
    transport: str, app: str, warnings: Collect
) -> None:
    billing = Domain("billing", PATIENT)
    seen: list[str] = []
    in_handler, outage = anyio.Event(), anyio.Event()

    @billing.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        if not outage.is_set():
            in_handler.set()
            await outage.wait()  # hold the first record until the endpoint is gone
        seen.append(event.order_id)

    endpoint = LocalEndpoint()
    settings = AwsSettings(
        endpoint_url=endpoint.start(), wait_time_seconds=1, retry_deadline=30, sdk_max_attempts=1
    )
    try:
        harness = Harness(
            billing, transport=factory(transport, settings), clock=SystemClock(), app=app
        )
        async with harness as h, anyio.create_task_group() as group:
            for n in (1, 2, 3):
                await h.publish(OrderPlaced(order_id=f"before-{n}"), source="orders")
            with anyio.fail_after(10):
                await in_handler.wait()

            endpoint.stop()
            outage.set()
            during = anyio.Event()

            async def publish_during_outage() -> None:
                for n in (1, 2):
                    await h.publish(OrderPlaced(order_id=f"during-{n}"), source="orders")
                during.set()

            group.start_soon(publish_during_outage)
            # The outage lasts until both sides have met it (past botocore's own retries).
            await until(lambda: any(map(publisher_retried, warnings.messages)), "publish retry")
            await until(lambda: any(map(poller_retried, warnings.messages)), "receive retry")
            assert not during.is_set(), "a publish succeeded with the endpoint down"

            endpoint.start()
            with anyio.fail_after(30):
                await during.wait()
            await h.settle()
    finally:
        endpoint.stop()
    assert sorted(set(seen)) == ["before-1", "before-2", "before-3", "during-1", "during-2"]


def poller_retried(message: str) -> bool:
    return message.startswith("receive from") and "retrying" in message


def publisher_retried(message: str) -> bool:
    return message.startswith(("SNS PublishBatch", "EventBridge PutEvents")) and (
        "retrying" in message
    )
