"""Hostile input at the edges: what a producer or a stranger with publish rights can put on the
wire, and how every transport keeps it to the one record that carries it.

Written once and run unchanged against every transport in `conftest.CASES`; records a
well-behaved producer cannot make are put on the wire directly (`deliver_raw`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import anyio
import orjson
import pytest

from adapters.aws.eventbridge import EventBridgeTransport
from adapters.aws.sns_sqs import SnsSqsTransport
from bus import Context, Domain, DomainSettings, Event, Task
from bus.envelope import Envelope
from bus.errors import UnencodableMessage
from bus.memory import InMemoryTransport, QueuedMessage
from bus.testing import Harness

Build = Callable[..., Harness]
FAST = DomainSettings(visibility_timeout=1.0, max_receive_count=3, retry_attempts=1)
_raw_ids = itertools.count()
W3C_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Counted(Event):
    type = "COUNTED"
    count: int
    counts: list[int] = []


class Noted(Event):
    type = "NOTED"
    note: str


def envelope_body(type_: str, data: dict[str, Any], **attributes: Any) -> bytes:
    """An envelope as JSON, with any attribute (well-formed or not) set as given."""
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": attributes.pop("id", "hostile-1"),
        "source": "stranger",
        "type": type_,
        "time": "2026-01-01T00:00:00.000Z",
        "dataversion": 1,
        "correlationid": "corr-hostile",
        "data": data,
    }
    raw.update(attributes)
    return orjson.dumps(raw)


async def deliver_raw(
    h: Harness, body: bytes, *, routed_as: str, straight_to: str | None = None
) -> None:
    """Put `body` on the wire as the transport's publish path would carry an event of type
    `routed_as` (SNS `type` attribute, EventBridge `detail-type`), whatever the body says.

    `straight_to` skips the topic or bus and sends that domain's events queue the message it
    would have delivered: for bodies moto's own filtering cannot evaluate, and for what a
    sender with access to the queue itself can put there.
    """
    transport: Any = h.transport
    if isinstance(transport, InMemoryTransport):
        for spec in h.topology.queues:
            if spec.purpose == "events" and (
                spec.domain == straight_to if straight_to else routed_as in spec.message_types
            ):
                queue = transport.queues[spec.name]
                message_id = f"raw-{next(_raw_ids)}"
                queue.send(QueuedMessage(message_id, body, 0.0, type_attribute=routed_as))
        return
    if straight_to:
        sqs = await transport.client("sqs")
        url = (await transport.resources()).queue_urls[
            h.topology.require_queue(straight_to, "events").name
        ]
        await sqs.send_message(QueueUrl=url, **_queued(transport, body, routed_as))
        return
    if isinstance(transport, SnsSqsTransport):
        sns = await transport.client("sns")
        await sns.publish(
            TopicArn=(await transport.resources()).topic_arn,
            Message=body.decode(),
            MessageAttributes={"type": {"DataType": "String", "StringValue": routed_as}},
        )
        return
    assert isinstance(transport, EventBridgeTransport)
    events = await transport.client("events")
    response = await events.put_events(
        Entries=[
            {
                "EventBusName": h.topology.event_bus,
                "Source": "stranger",
                "DetailType": routed_as,
                "Detail": body.decode(),
            }
        ]
    )
    assert not response.get("FailedEntryCount"), response


def _queued(transport: Any, body: bytes, routed_as: str) -> dict[str, Any]:
    """The SQS message the topic (raw delivery, `type` attribute) or the bus (the EventBridge
    event, `detail` holding the envelope) puts on a subscribed queue."""
    if isinstance(transport, SnsSqsTransport):
        return {
            "MessageBody": body.decode(),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": routed_as}},
        }
    event = (
        b'{"version":"0","id":"raw","detail-type":'
        + orjson.dumps(routed_as)
        + b',"source":"stranger","account":"123456789012","time":"2026-01-01T00:00:00Z",'
        + b'"region":"us-east-1","resources":[],"detail":'
        + body
        + b"}"
    )
    return {"MessageBody": event.decode()}


def counter(seen: list[Counted]) -> Domain:
    domain = Domain("ledger", FAST)

    @domain.on(Counted)
    async def count(event: Counted, ctx: Context) -> None:
        seen.append(event)

    return domain


# --- 64-bit integers ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [2**64, -(2**63) - 1, 10**30])
async def test_an_integer_beyond_64_bits_is_refused_at_publish(build: Build, count: int) -> None:
    seen: list[Counted] = []
    async with build(counter(seen)) as h:
        with pytest.raises(UnencodableMessage, match="64-bit"):
            await h.publish(Counted(count=1, counts=[1, count]))
        await h.settle()
    assert seen == [] and h.published == []


async def test_integers_at_the_64_bit_edges_arrive_exactly(build: Build) -> None:
    seen: list[Counted] = []
    async with build(counter(seen)) as h:
        await h.publish(Counted(count=2**64 - 1, counts=[-(2**63), 1234567890123456789012 % 7]))
        await h.settle()
    assert [(e.count, e.counts) for e in seen] == [
        (2**64 - 1, [-(2**63), 1234567890123456789012 % 7])
    ]


# --- routing and dispatch read one type; tasks only from their own task queue -------------


class UserCreated(Event):
    type = "USER_CREATED"
    user_id: str


class SendEmail(Task):
    type = "SEND_EMAIL"
    domain = "mailer"
    to: str
    template: str


def mailer(sent: list[SendEmail], welcomed: list[str]) -> Domain:
    domain = Domain("mailer", FAST)

    @domain.on(UserCreated)
    async def welcome(event: UserCreated, ctx: Context) -> None:
        welcomed.append(event.user_id)

    @domain.task(SendEmail)
    async def send_email(task: SendEmail, ctx: Context) -> None:
        sent.append(task)

    return domain


PASSWORD_RESET = {"to": "victim@example.com", "template": "password-reset"}


async def test_a_body_claiming_another_type_than_it_was_routed_by_is_parked(
    build: Build,
) -> None:
    sent: list[SendEmail] = []
    welcomed: list[str] = []
    async with build(mailer(sent, welcomed)) as h:
        body = envelope_body("SEND_EMAIL", PASSWORD_RESET)
        await deliver_raw(h, body, routed_as="USER_CREATED")
        await h.send(SendEmail(to="user@example.com", template="welcome"))
        await h.settle()
        (letter,) = await h.dead_letters("mailer")
        assert await h.dead_letters("mailer", "tasks") == []
    assert [task.to for task in sent] == ["user@example.com"]
    assert "'USER_CREATED'" in (letter.reason or "") and "'SEND_EMAIL'" in (letter.reason or "")


async def test_a_task_put_on_an_events_queue_is_parked_not_run(build: Build) -> None:
    sent: list[SendEmail] = []
    welcomed: list[str] = []
    async with build(mailer(sent, welcomed)) as h:
        body = envelope_body("SEND_EMAIL", PASSWORD_RESET)
        await deliver_raw(h, body, routed_as="SEND_EMAIL", straight_to="mailer")
        await deliver_raw(
            h, envelope_body("USER_CREATED", {"user_id": "u1"}, id="e2"), routed_as="USER_CREATED"
        )
        await h.settle()
        (letter,) = await h.dead_letters("mailer")
    assert sent == [] and welcomed == ["u1"]
    assert "mailer's task queue" in (letter.reason or "")


# --- deep nesting ---------------------------------------------------------------------------


class Shipped(Event):
    type = "SHIPPED"
    order_id: str
    parcels: Any = None


def deep_array(depth: int, inner: bytes) -> bytes:
    """JSON arrays nested `depth` deep around `inner` (orjson reads up to 1024 levels)."""
    return b"[" * depth + inner + b"]" * depth


def shipped_body(order_id: str, parcels: bytes) -> bytes:
    return envelope_body("SHIPPED", {"order_id": order_id}, id=f"evt-{order_id}").replace(
        b'"order_id":', b'"parcels":' + parcels + b',"order_id":'
    )


@pytest.mark.parametrize("depth", [990, 1020])
async def test_arrays_nested_a_thousand_deep_are_matched_record_by_record(
    build: Build, depth: int
) -> None:
    fragile = Domain("fragile", FAST)
    seen: list[str] = []

    @fragile.on(Shipped, where={"parcels": [{"numeric": [">", 10]}]})
    async def heavy(event: Shipped, ctx: Context) -> None:
        seen.append(event.order_id)

    async with build(fragile) as h:
        for order_id, parcels in [
            ("light", b"[1]"),
            ("deep-heavy", deep_array(depth, b"11")),
            ("deep-light", deep_array(depth, b"1")),
            ("heavy", b"[12]"),
        ]:
            body = shipped_body(order_id, parcels)
            await deliver_raw(h, body, routed_as="SHIPPED", straight_to="fragile")
        await h.settle()
        assert await h.dead_letters("fragile") == []
    assert sorted(seen) == ["deep-heavy", "heavy"]
    assert h.results("failed") == [] and h.results("parked") == []


# --- traceparent, subject, causationid ----------------------------------------------------


def relay_domain(received: list[Envelope]) -> tuple[Domain, Domain]:
    """`ledger` turns each COUNTED into a NOTED; `audit` keeps every NOTED envelope."""
    ledger = Domain("ledger", FAST)

    @ledger.on(Counted)
    async def note(event: Counted, ctx: Context) -> None:
        assert ctx.envelope is not None
        ctx.publish(Noted(note=str(event.count)), subject=ctx.envelope.subject)

    audit = Domain("audit", FAST)

    @audit.on(Noted)
    async def keep(event: Noted, ctx: Context) -> None:
        assert ctx.envelope is not None
        received.append(ctx.envelope)

    return ledger, audit


@pytest.mark.parametrize(
    "hostile",
    [{}, 5, "x" * (255 * 1024 - 2048), None, ["00"]],
    ids=["object", "number", "255KB", "null", "array"],
)
async def test_a_malformed_traceparent_is_dropped_not_inherited(
    build: Build, features: Any, hostile: Any
) -> None:
    received: list[Envelope] = []
    async with build(*relay_domain(received)) as h:
        # A short string is a fine subject; a huge one would not fit the path twice over.
        ids_too = not isinstance(hostile, str) or features.publish_limit > 3 * len(hostile)
        body = envelope_body(
            "COUNTED",
            {"count": 1},
            traceparent=hostile,
            **({"subject": hostile, "causationid": hostile} if ids_too else {}),
        )
        await deliver_raw(h, body, routed_as="COUNTED")
        await h.settle()
        assert not await h.dead_letters("ledger")
    (noted,) = received
    assert noted.traceparent is None and noted.subject is None
    assert noted.causationid == "hostile-1"
    assert h.results("failed") == [] and h.results("parked") == []


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        W3C_TRACEPARENT.upper(),
        W3C_TRACEPARENT + "-extra",
    ],
)
async def test_a_traceparent_not_in_w3c_form_is_dropped(build: Build, traceparent: str) -> None:
    received: list[Envelope] = []
    async with build(*relay_domain(received)) as h:
        body = envelope_body("COUNTED", {"count": 1}, traceparent=traceparent)
        await deliver_raw(h, body, routed_as="COUNTED")
        await h.settle()
    (noted,) = received
    assert noted.traceparent is None


async def test_a_w3c_traceparent_and_a_subject_are_kept(build: Build) -> None:
    received: list[Envelope] = []
    async with build(*relay_domain(received)) as h:
        body = envelope_body(
            "COUNTED", {"count": 1}, traceparent=W3C_TRACEPARENT, subject="account-7"
        )
        await deliver_raw(h, body, routed_as="COUNTED")
        await h.settle()
    (noted,) = received
    assert noted.traceparent == W3C_TRACEPARENT and noted.subject == "account-7"


@pytest.fixture
def build(harness: Build) -> Build:
    return harness


@pytest.mark.parametrize("attribute", ["id", "correlationid"])
async def test_an_oversized_id_every_downstream_event_would_inherit_is_parked(
    build: Build, attribute: str
) -> None:
    received: list[Envelope] = []
    async with build(*relay_domain(received)) as h:
        await deliver_raw(
            h,
            envelope_body("COUNTED", {"count": 1}, **{attribute: "i" * 4096}),
            routed_as="COUNTED",
        )
        await h.settle()
        (letter,) = await h.dead_letters("ledger")
    assert received == []
    assert f"{attribute!r} is 4096 characters" in (letter.reason or "")


# --- a handler that never returns ---------------------------------------------------------


async def test_a_hanging_handler_is_cut_off_and_the_queue_moves_on(
    build: Build, features: Any
) -> None:
    ledger = Domain(
        "ledger",
        DomainSettings(visibility_timeout=1.0, max_receive_count=2, retry_attempts=1, batch_size=1),
    )
    seen: list[int] = []

    @ledger.on(Counted)
    async def count(event: Counted, ctx: Context) -> None:
        if event.count == 0:
            await asyncio.Event().wait()  # never set: the handler hangs
        seen.append(event.count)

    async with build(ledger) as h:
        for number in range(4):
            await h.publish(Counted(count=number))
        with anyio.fail_after(60):  # a guard: unbounded, the hanging record never settles
            await h.settle()
        (letter,) = await h.dead_letters("ledger")
    assert sorted(seen) == [1, 2, 3]
    assert orjson.loads(letter.body)["data"]["count"] == 0
    if features.exhausted_reasons:
        assert "TimeoutError" in (letter.reason or "")
