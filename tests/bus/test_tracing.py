"""One trace follows a request through every domain it reaches: server, producer and consumer
spans, each consumer span the child of the producer span of the message it handles."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind, StatusCode

from bus import ConfigurationError, Context, Domain, DomainSettings, Event
from bus.http import HttpRequest, HttpRouter
from bus.redaction import EMAIL_MASK, REDACTED
from bus.testing import Harness
from bus.tracing import Tracing, span_attributes, tracer_provider_from_env
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users


class Ordered(Event):
    type = "ORDERED"
    order: str


class Packed(Event):
    type = "PACKED"
    order: str


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _by_name(spans: Sequence[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_consumer_span_is_the_child_of_its_messages_producer_span(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    warehouse = Domain("warehouse", DomainSettings(retry_attempts=1, max_receive_count=2))
    shipping = Domain("shipping")
    failures = 1

    @warehouse.on(Ordered)
    async def pack(event: Ordered, ctx: Context) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise RuntimeError("scanner offline")
        ctx.publish(Packed(order=event.order))

    @shipping.on(Packed)
    async def ship(event: Packed, ctx: Context) -> None: ...

    async with Harness(warehouse, shipping, tracer_provider=provider) as h:
        await h.publish(Ordered(order="o1"))
        await h.settle()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "warehouse.pack process",
        "PACKED publish",
        "warehouse.pack process",
        "shipping.ship process",
    ]
    failed, published, packed, shipped = spans
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["tctf.outcome"] == "failed"
    assert published.kind is SpanKind.PRODUCER and _parent_of(published) == packed.context.span_id
    assert shipped.kind is SpanKind.CONSUMER and _parent_of(shipped) == published.context.span_id
    assert shipped.context.trace_id == packed.context.trace_id
    [envelope] = h.published_of("PACKED")
    assert envelope.traceparent is not None
    assert envelope.traceparent.split("-")[1:3] == [
        f"{published.context.trace_id:032x}",
        f"{published.context.span_id:016x}",
    ]
    assert (
        shipped.attributes is not None
        and shipped.attributes["messaging.destination.name"] == "PACKED"
    )
    assert shipped.attributes["tctf.domain"] == "shipping"
    assert shipped.attributes["tctf.outcome"] == "handled"


async def test_a_sign_up_over_http_is_one_trace_through_every_domain_it_reaches(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with Harness(users, messaging, tracer_provider=provider) as h:
        router = HttpRouter(
            h.runtime.domains, h.runtime.publisher, h.runtime.context, tracing=h.runtime.tracing
        )
        response = await router.handle(
            HttpRequest(
                "POST",
                "/users",
                headers={
                    "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01",
                    "x-correlation-id": "signup-1",
                },
                body=orjson.dumps({"email": "ada@example.com", "name": "Ada"}),
            )
        )
        await h.settle()
    assert response.status == 201
    everything = exporter.get_finished_spans()
    # Each table's outbox relay publishes in a trace of its own, linked to the event's
    # producer span; everything else is the caller's trace.
    relays = [s for s in everything if " outbox relay " in s.name]
    [relay] = [s for s in relays if s.name == "users outbox relay publish"]
    spans = [s for s in everything if s not in relays]
    assert {f"{s.context.trace_id:032x}" for s in spans} == {caller_trace}
    named = _by_name(spans)
    [server] = named["POST /users"]
    [created] = named["USER_CREATED publish"]
    [welcome] = named["messaging_consumers.welcome_new_user process"]
    [email_task] = named["SEND_EMAIL send"]
    [email] = named["messaging_consumers.deliver process"]
    [sent] = named["EMAIL_SENT publish"]
    assert server.kind is SpanKind.SERVER and _parent_of(server) == 0x00F067AA0BA902B7
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 201
    assert _parent_of(created) == server.context.span_id
    assert [link.context.span_id for link in relay.links] == [created.context.span_id]
    assert _parent_of(welcome) == created.context.span_id
    assert _parent_of(email_task) == welcome.context.span_id
    assert _parent_of(sent) == email.context.span_id
    assert _parent_of(email) == email_task.context.span_id
    assert {s.attributes["tctf.correlation_id"] for s in spans if s.attributes} == {"signup-1"}
    assert {
        s.attributes["tctf.domain"]
        for s in (welcome, email)
        if s.attributes  # the consumer spans: the domains the cascade reached
    } == {"messaging_consumers"}


async def test_no_span_attribute_carries_a_payload_field(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    async with Harness(users, messaging, tracer_provider=provider) as h:
        router = HttpRouter(
            h.runtime.domains, h.runtime.publisher, h.runtime.context, tracing=h.runtime.tracing
        )
        body = {"email": "grace@example.com", "name": "Grace Hopper"}
        await router.handle(HttpRequest("POST", "/users", body=orjson.dumps(body)))
        await h.settle()
    values = [
        str(value)
        for span in exporter.get_finished_spans()
        for value in (span.attributes or {}).values()
    ]
    assert values and not [v for v in values if "grace" in v.lower()]


def test_span_attributes_pass_the_log_lines_redaction_filter() -> None:
    """An id or a type is the sender's to choose: an address or a credential in one is
    redacted on a span exactly as on a log line."""
    attributes = span_attributes(
        {
            "messaging.message.id": "mallory@example.com",
            "tctf.session_token": "abc",
            "tctf.event.type": "ORDERED",
            "tctf.receive_count": 2,
            "tctf.absent": None,
        }
    )
    assert attributes["messaging.message.id"] != "mallory@example.com"
    assert "mallory@example.com" not in str(attributes)
    assert attributes["tctf.session_token"] == REDACTED
    assert attributes["tctf.event.type"] == "ORDERED" and attributes["tctf.receive_count"] == 2
    assert "tctf.absent" not in attributes


async def test_an_unmatched_request_gets_a_server_span_with_its_status(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    async with Harness(users, tracer_provider=provider) as h:
        router = HttpRouter(
            h.runtime.domains, h.runtime.publisher, h.runtime.context, tracing=h.runtime.tracing
        )
        response = await router.handle(HttpRequest("GET", "/nowhere"))
    [span] = exporter.get_finished_spans()
    assert response.status == 404
    assert span.name == "GET" and span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404


def test_nothing_is_traced_unless_an_exporter_is_named() -> None:
    assert tracer_provider_from_env({}) is None
    assert tracer_provider_from_env({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert (
        tracer_provider_from_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"})
        is None
    )


def test_an_unknown_exporter_or_protocol_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="zipkin"):
        tracer_provider_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ConfigurationError, match="grpc"):
        tracer_provider_from_env(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )


#: A context whose trace the sampler at its root dropped (flags 00).
UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


async def deliver_unsampled(domain: Domain, provider: TracerProvider) -> Harness:
    """`domain` handling one `Ordered` published in the `UNSAMPLED` trace; its harness, settled."""
    async with Harness(domain, tracer_provider=provider) as h:
        context = h.runtime.context("shop")
        envelope = context.envelope_for(Ordered(order="o1"))._replace(traceparent=UNSAMPLED)
        await h.runtime.publisher.publish([envelope])
        await h.settle()
    return h


async def test_a_message_of_a_trace_not_sampled_is_handled_without_spans(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    warehouse = Domain("warehouse")

    @warehouse.on(Ordered)
    async def pack(event: Ordered, ctx: Context) -> None:
        ctx.publish(Packed(order=event.order))

    h = await deliver_unsampled(warehouse, provider)
    assert exporter.get_finished_spans() == ()
    [packed] = h.published_of("PACKED")
    assert packed.traceparent == UNSAMPLED


async def test_a_handlers_own_spans_in_a_trace_not_sampled_continue_that_trace_unrecorded(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    warehouse = Domain("warehouse")
    tracer = trace.get_tracer("warehouse", tracer_provider=provider)
    seen: list[trace.SpanContext] = []

    @warehouse.on(Ordered)
    async def pack(event: Ordered, ctx: Context) -> None:
        with tracer.start_as_current_span("weigh parcel") as own:
            seen.append(own.get_span_context())
            assert not own.is_recording()

    await deliver_unsampled(warehouse, provider)
    [own] = seen
    assert own.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736, "the trace it was handled in"
    assert not own.trace_flags.sampled
    assert exporter.get_finished_spans() == ()


async def test_a_request_not_sampled_carries_its_trace_id_unsampled_through_every_hop(
    exporter: InMemorySpanExporter,
) -> None:
    asked: list[int] = []

    class NeverSampler(Sampler):
        def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
            asked.append(1)
            return ParentBased(ALWAYS_OFF).should_sample(*args, **kwargs)

        def get_description(self) -> str:
            return "never"

    provider = TracerProvider(sampler=NeverSampler())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = trace.get_tracer("shop", tracer_provider=provider)
    warehouse = Domain("warehouse")
    inside: list[trace.SpanContext] = []

    @warehouse.on(Ordered)
    async def pack(event: Ordered, ctx: Context) -> None:
        inside.append(trace.get_current_span().get_span_context())
        ctx.publish(Packed(order=event.order))

    async with Harness(warehouse, tracer_provider=provider) as h:
        tracing = h.runtime.tracing
        assert tracing is not None
        with tracing.server("POST", {}, "c1") as span:
            request = trace.get_current_span().get_span_context()
            with tracer.start_as_current_span("check stock") as own:
                assert own.get_span_context().trace_id == request.trace_id
            asked.clear()  # the route's own span asked the sampler too, as the SDK does
            span.routed("/orders", "shop")
            await h.runtime.publish(Ordered(order="o1"), source="shop", correlation_id="c1")
            span.answered(202)
        await h.settle()
    tracing.flush()
    assert asked == [], "asked once, at the root, and not again for the bus's own steps"
    assert request.is_valid and not request.trace_flags.sampled
    [ordered], [packed] = h.published_of("ORDERED"), h.published_of("PACKED")
    trace_hex = f"{request.trace_id:032x}"
    flags = f"{request.trace_flags:02x}"  # the random-trace-id flag may be set, never sampled
    assert ordered.traceparent == f"00-{trace_hex}-{request.span_id:016x}-{flags}"
    assert packed.traceparent is not None and packed.traceparent[3:35] == trace_hex
    assert packed.traceparent.endswith(f"-{flags}")
    [handled] = inside
    assert (handled.trace_id, handled.is_remote) == (request.trace_id, True)
    assert not handled.trace_flags.sampled
    assert exporter.get_finished_spans() == ()


def test_otlp_sends_spans_over_http_to_the_endpoint_the_environment_names() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None: ...

    with ThreadingHTTPServer(("127.0.0.1", 0), Collector) as server:
        Thread(target=server.serve_forever, daemon=True).start()
        try:
            provider = tracer_provider_from_env(
                {
                    "OTEL_TRACES_EXPORTER": "otlp",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
                    "OTEL_SERVICE_NAME": "users-fn",
                }
            )
            assert provider is not None
            provider.get_tracer("test").start_span("POST /users").end()
            assert provider.force_flush(10_000)
        finally:
            server.shutdown()
    [(path, content_type, body)] = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "users-fn"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["POST /users"]


async def test_a_failed_handler_calls_span_names_the_error_type_not_its_message(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    warehouse = Domain("warehouse", DomainSettings(retry_attempts=1, max_receive_count=1))

    @warehouse.on(Ordered)
    async def pack(event: Ordered, ctx: Context) -> None:
        raise RuntimeError(f"no stock for {event.order}")

    async with Harness(warehouse, tracer_provider=provider) as h:
        await h.publish(Ordered(order="grace@example.com"))
        await h.settle()
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["error.type"] == "RuntimeError"
    recorded = [*span.attributes.values(), span.status.description]
    recorded += [v for event in span.events for v in (event.attributes or {}).values()]
    assert not [value for value in recorded if "grace" in str(value)]


class CountingSampler(Sampler):
    """The SDK's default sampler, counting the decisions it is asked for."""

    def __init__(self) -> None:
        self.asked = 0
        self._default = ParentBased(ALWAYS_ON)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        self.asked += 1
        return self._default.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "counting"


async def test_the_sampling_decision_is_taken_once_per_trace(
    exporter: InMemorySpanExporter,
) -> None:
    sampler = CountingSampler()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Harness(users, messaging, tracer_provider=provider) as h:
        router = HttpRouter(
            h.runtime.domains, h.runtime.publisher, h.runtime.context, tracing=h.runtime.tracing
        )
        for n in range(3):
            body = {"email": f"u{n}@example.com", "name": f"U{n}"}
            await router.handle(HttpRequest("POST", "/users", body=orjson.dumps(body)))
        await h.settle()
    spans = exporter.get_finished_spans()
    traces = {span.context.trace_id for span in spans if span.parent is None}
    assert len(spans) > len(traces)
    assert sampler.asked == len(traces), "asked at each trace's root, never below it"


async def test_a_handlers_own_spans_nest_under_its_consumer_span(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    warehouse = Domain("warehouse")
    tracer = trace.get_tracer("warehouse", tracer_provider=provider)

    @warehouse.on(Ordered)
    async def pack(event: Ordered, ctx: Context) -> None:
        trace.get_current_span().set_attribute("warehouse.bin", "b7")
        with tracer.start_as_current_span("weigh parcel"):
            ctx.publish(Packed(order=event.order))

    async with Harness(warehouse, tracer_provider=provider) as h:
        await h.publish(Ordered(order="o1"))
        await h.settle()
    named = _by_name(exporter.get_finished_spans())
    [consumer], [own], [producer] = (
        named["warehouse.pack process"],
        named["weigh parcel"],
        named["PACKED publish"],
    )
    assert _parent_of(own) == consumer.context.span_id
    assert _parent_of(producer) == own.context.span_id
    assert own.context.trace_id == consumer.context.trace_id == producer.context.trace_id
    assert consumer.attributes is not None and consumer.attributes["warehouse.bin"] == "b7"
    assert consumer.resource is provider.resource


async def test_spans_reach_the_processors_when_tracing_flushes_before_the_loop_moves_on(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    tracing = Tracing(provider)
    with tracing.server("GET", {}, "c1") as span:
        span.routed("/users/{user_id}", "users")
        span.answered(200)
    assert exporter.get_finished_spans() == (), "held until the loop's step is done"
    tracing.flush()
    [server] = exporter.get_finished_spans()
    assert (server.name, server.kind, server.parent) == (
        "GET /users/{user_id}",
        SpanKind.SERVER,
        None,
    )
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    assert server.end_time is not None and server.start_time is not None
    assert server.end_time >= server.start_time


def test_a_recorded_server_span_filters_what_came_with_the_request(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    tracing = Tracing(provider)
    with tracing.server("post", {}, "ada@example.com token=hunter2") as span:
        span.routed("/users", "users")
    tracing.flush()
    [server] = exporter.get_finished_spans()
    assert server.attributes is not None
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["tctf.correlation_id"] == f"{EMAIL_MASK} token={REDACTED}"


async def test_a_request_continues_the_callers_trace_and_keeps_its_sampling(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    tracing = Tracing(provider)
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    unsampled = caller[:-2] + "00"
    for traceparent in (caller, unsampled):
        with tracing.server("POST", {"traceparent": traceparent}, "c1"):
            pass
    tracing.flush()
    [server] = exporter.get_finished_spans()
    assert server.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert server.parent is not None and server.parent.span_id == 0x00F067AA0BA902B7
    assert server.parent.is_remote


EXITS_MID_STEP = """
import asyncio, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from bus.tracing import Tracing

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
tracing = Tracing(provider)

async def answer_then_exit() -> None:
    with tracing.server("GET", {}, "c1") as span:
        span.routed("/last/request", "users")
    raise SystemExit  # the loop stops at once: the step's hand-over never runs

asyncio.new_event_loop().run_until_complete(answer_then_exit())
"""


def test_a_span_ended_in_a_loops_last_step_is_exported_when_the_process_exits() -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXITS_MID_STEP], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "GET /last/request"' in done.stdout
