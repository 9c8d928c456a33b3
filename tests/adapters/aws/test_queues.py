"""The queue side both transports share: connections, DLQ reading and redrive, imports."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
import pytest
from botocore.exceptions import EndpointConnectionError

from adapters.aws.errors import AwsTransportError, NotProvisioned, PublishFailed
from adapters.aws.session import AwsSettings
from adapters.aws.sns_sqs import SnsSqsTransport
from bus import ConfigurationError, Context, Domain, DomainSettings, Event, Storage
from bus.envelope import Envelope
from bus.topology import Topology
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


async def test_entering_a_transport_whose_queues_are_missing_closes_its_clients(
    settings: AwsSettings, app: str
) -> None:
    topology = Topology.from_domains([billing()], app=app)
    transport = SnsSqsTransport(topology, replace(settings, provision=False))
    with pytest.raises(NotProvisioned):
        async with transport:
            pass
    assert transport._clients is None


def _outbox_letter(n: int) -> str:
    """An outbox item as the stream relay parks it: its image as JSON, the body base64."""
    envelope = Envelope(
        id=f"evt-{n}",
        source="ledger",
        type=OrderPlaced.type,
        time="2026-01-01T00:00:00.000Z",
        dataversion=1,
        correlationid="corr-1",
        data=OrderPlaced(order_id=str(n)),
    )
    body = base64.b64encode(envelope.encode()).decode()
    return json.dumps({"PK": f"OUTBOX#ORDER#{n}", "SK": f"EVENT#{n:020d}", "body": body})


async def test_an_outage_stops_an_outbox_redrive_once_what_it_published_is_deleted(
    settings: AwsSettings, app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = Topology.from_domains([billing(), Domain("ledger", storage=Storage())], app=app)
    transport = SnsSqsTransport(topology, replace(settings, retry_deadline=0.2))
    async with transport:
        sqs = (await transport.clients()).sqs
        url = await transport.outbox_dlq_url("ledger")
        for n in (1, 2):
            await sqs.send_message(QueueUrl=url, MessageBody=_outbox_letter(n))
        sns = await transport.client("sns")
        publish_batch = sns.publish_batch
        calls = 0

        async def unreachable_after_one(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise EndpointConnectionError(endpoint_url="http://sns.invalid")
            return await publish_batch(**kwargs)

        monkeypatch.setattr(sns, "publish_batch", unreachable_after_one)
        with pytest.raises(PublishFailed):
            await transport.redrive_outbox("ledger")

        events = transport.topology.require_queue("billing", "events").name
        assert await visible(sqs, url) == 1  # the one not published, visible again at once
        assert await visible(sqs, (await transport.resources()).queue_urls[events]) == 1


def test_a_lambda_cold_start_imports_neither_the_runtime_nor_the_poller() -> None:
    """A stateless Lambda publishes and consumes through these transports: it needs neither
    `bus.runtime` nor the local poller (the storage port it loads is for its idempotency
    table, docs/decisions/0010)."""
    env = {
        "TCTF_DOMAIN": "messaging_consumers",
        "TCTF_TRANSPORT": "sns",
        "TCTF_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:tctf-events",
    }
    loaded = modules_after_import(env, "adapters.lambda_.entry", "adapters.aws.eventbridge")
    assert not {m for m in loaded if m in ("bus.runtime", "adapters.aws.poller")}


async def test_a_transport_serves_only_the_handler_its_composer_passed_in(
    settings: AwsSettings, app: str
) -> None:
    """The pollers hand batches to `handler_for`; without one they have nothing to call,
    and the AWS adapter does not reach up into the Lambda adapter for a default."""
    from bus.dispatch import Dispatcher
    from bus.memory import InMemoryTransport

    domain = billing()
    topology = Topology.from_domains([domain], app=app)
    dispatcher = Dispatcher(domain, InMemoryTransport(topology))
    async with SnsSqsTransport(topology, settings) as transport:
        with pytest.raises(ConfigurationError, match="built without handler_for"):
            await transport.serve({"billing": dispatcher})
