"""The queue side both transports share: connections, DLQ reading and redrive, imports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from adapters.aws.errors import AwsTransportError
from adapters.aws.session import AwsSettings
from adapters.aws.sns_sqs import SnsSqsTransport
from bus import Context, Domain, DomainSettings, Event, Topology
from tests.cold_start import modules_after_import


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str


def billing(concurrency: int = 1) -> Domain:
    domain = Domain("billing", DomainSettings(concurrency=concurrency))

    @domain.on(OrderPlaced)
    async def charge(event: OrderPlaced, ctx: Context) -> None:
        pass

    return domain


@pytest.fixture
async def transport(settings: AwsSettings, app: str) -> AsyncIterator[SnsSqsTransport]:
    async with SnsSqsTransport(Topology.from_domains([billing()], app=app), settings) as made:
        yield made


async def fill_dlq(transport: SnsSqsTransport, *bodies: str) -> tuple[Any, str, str]:
    """Put messages straight into billing's events DLQ; (client, DLQ url, queue url)."""
    resources = await transport.resources()
    spec = transport.topology.require_queue("billing", "events")
    sqs = (await transport.clients()).sqs
    dlq = resources.queue_urls[spec.dlq]
    for body in bodies:
        await sqs.send_message(
            QueueUrl=dlq,
            MessageBody=body,
            MessageAttributes={"type": {"DataType": "String", "StringValue": "ORDER_PLACED"}},
        )
    return sqs, dlq, resources.queue_urls[spec.name]


async def visible(sqs: Any, url: str) -> int:
    found = await sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(found["Attributes"]["ApproximateNumberOfMessages"])


async def test_calls_do_not_wait_behind_the_pollers_long_polls(
    settings: AwsSettings, app: str
) -> None:
    """Every poller loop holds one of the shared client's connections for its long poll."""
    loops = 12  # beyond the SDK's default pool of 10
    topology = Topology.from_domains([billing(concurrency=loops)], app=app)
    transport = SnsSqsTransport(topology, settings)
    try:
        sqs = await transport.client("sqs")
        url = (await sqs.create_queue(QueueName=f"{app}-pool"))["QueueUrl"]
        async with anyio.create_task_group() as group:
            for _ in range(loops):
                group.start_soon(long_poll, sqs, url)
            await anyio.sleep(0.3)
            start = time.monotonic()
            await sqs.send_message(QueueUrl=url, MessageBody="x")
            waited = time.monotonic() - start
            group.cancel_scope.cancel()
    finally:
        await transport.aclose()
    assert waited < 1.5, f"a send waited {waited:.1f}s for a connection"


async def long_poll(sqs: Any, url: str) -> None:
    await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)


async def test_redrive_keeps_each_send_within_the_sqs_batch_size(
    transport: SnsSqsTransport,
) -> None:
    """Ten messages of 200 KB: over SendMessageBatch's 1 MiB total if sent in one call."""
    sqs, dlq, source = await fill_dlq(transport, *(f"{n}" + "x" * 200_000 for n in range(10)))
    assert await transport.redrive("billing") == 10
    assert (await visible(sqs, source), await visible(sqs, dlq)) == (10, 0)


async def test_dead_letters_long_polls(
    transport: SnsSqsTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQS short poll samples some servers only and may answer nothing on a small queue."""
    sqs, _, _ = await fill_dlq(transport, "a", "b", "c")
    receive = sqs.receive_message

    async def sampling(**kwargs: Any) -> Any:
        if kwargs.get("WaitTimeSeconds", 0) == 0:
            return {}
        return await receive(**kwargs)

    monkeypatch.setattr(sqs, "receive_message", sampling)
    dead = await transport.dead_letters("billing")
    assert sorted(d.body for d in dead) == [b"a", b"b", b"c"]


async def test_reading_a_dlq_ends_when_its_messages_come_back_before_the_end(
    transport: SnsSqsTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DLQ too large to read before the first messages reappear is still read once."""
    sqs, _, _ = await fill_dlq(transport, "a", "b", "c")
    receive = sqs.receive_message

    async def reappearing(**kwargs: Any) -> Any:
        return await receive(**{**kwargs, "VisibilityTimeout": 0})

    monkeypatch.setattr(sqs, "receive_message", reappearing)
    with anyio.fail_after(10):
        dead = await transport.dead_letters("billing")
    assert sorted(d.body for d in dead) == [b"a", b"b", b"c"]


async def test_redrive_says_which_messages_it_could_not_delete_from_the_dlq(
    transport: SnsSqsTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, _, source = await fill_dlq(transport, "a", "b")

    async def refusing(QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        return {
            "Failed": [
                {"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True}
                for e in Entries
            ]
        }

    monkeypatch.setattr(sqs, "delete_message_batch", refusing)
    with pytest.raises(AwsTransportError, match="could not delete 2 of them") as raised:
        await transport.redrive("billing")
    assert "ReceiptHandleIsInvalid" in str(raised.value)
    assert transport.topology.require_queue("billing", "events").dlq in str(raised.value)
    assert await visible(sqs, source) == 2


def test_a_lambda_cold_start_imports_neither_the_runtime_nor_the_poller() -> None:
    """A stateless Lambda publishes and consumes through these transports: it needs neither
    `bus.runtime` (and the storage it brings) nor the local poller."""
    env = {
        "TCTF_DOMAIN": "messaging",
        "TCTF_TRANSPORT": "sns",
        "TCTF_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:tctf-events",
    }
    loaded = modules_after_import(env, "adapters.lambda_.entry", "adapters.aws.eventbridge")
    assert not {
        m
        for m in loaded
        if m.startswith("bus.storage") or m in ("bus.runtime", "adapters.aws.poller")
    }
