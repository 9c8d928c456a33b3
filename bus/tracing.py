"""Traces: the OpenTelemetry spans of what the bus does, alike on every runtime.

A server span per HTTP request (continuing the caller's `traceparent`), a producer span per
event or task a handler or route stages (whose context becomes the envelope's `traceparent`,
so it crosses every hop the envelope makes: SQS and SNS message attributes, EventBridge
detail, the outbox and its relay), and a consumer span per handler call, the child of the
producer span of the message it handles. Spans carry ids, types, names, outcomes and timings,
never a body or a payload field; `span_attributes` is the one place their attributes are made.

OpenTelemetry is imported only when a `Tracing` is made, so a runtime without a tracer
provider never loads it (a Lambda's cold start, decision 0008).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from bus.errors import ConfigurationError
from bus.redaction import redact_attributes

if TYPE_CHECKING:  # the context imports this module: middleware loads after it
    from opentelemetry.trace import Link, Span

    from bus.dispatch import Publisher
    from bus.envelope import Envelope
    from bus.middleware import Delivery, Handler, Middleware

#: An attribute value OpenTelemetry accepts.
AttributeValue = str | bool | int | float

#: The tracing of the handler call or HTTP request being run: what stages a message opens its
#: producer span there. None outside them, or when nothing traces.
_active: ContextVar[Tracing | None] = ContextVar("tctf_tracing", default=None)


def span_attributes(values: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    """The attributes a span gets from `values`: every tctf span's pass through here.

    Only ids, types, names, outcomes and timings are ever given; absent values are left out,
    and what is left passes the one redaction filter the log lines pass (`bus.redaction`),
    so an e-mail address or a credential in an id or a type never reaches an exporter.
    """
    return redact_attributes({key: value for key, value in values.items() if value is not None})


class Tracing:
    """Spans of one tracer provider: server, producer and consumer spans, and their flush."""

    def __init__(self, tracer_provider: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.tracer_provider = tracer_provider
        self._trace = trace
        self._tracer = trace.get_tracer("tctf", tracer_provider=tracer_provider)
        self._propagator = TraceContextTextMapPropagator()
        self._root = Context()

    def _context_of(self, traceparent: str | None) -> Any:
        """The context whose span is the one `traceparent` names (an empty one for none)."""
        return self._propagator.extract({"traceparent": traceparent} if traceparent else {})

    def _parent_of(self, traceparent: str | None) -> Any:
        """`_context_of` for an envelope's `traceparent`, which decoding has already checked
        against W3C's format: read by position, without the propagator's parsing."""
        if traceparent is None:
            return self._root
        try:
            context = self._trace.SpanContext(
                int(traceparent[3:35], 16),
                int(traceparent[36:52], 16),
                is_remote=True,
                trace_flags=self._trace.TraceFlags(int(traceparent[53:55], 16)),
            )
        except ValueError:
            return self._context_of(traceparent)
        return self._trace.set_span_in_context(self._trace.NonRecordingSpan(context), self._root)

    def _traceparent_of(self, span: Span) -> str:
        context = span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def links(self, traceparents: Iterable[str | None]) -> list[Link]:
        """A link to each distinct span context among `traceparents` (a batch's records)."""
        seen: set[tuple[int, int]] = set()
        links: list[Link] = []
        for traceparent in traceparents:
            context = self._trace.get_current_span(self._context_of(traceparent)).get_span_context()
            key = (context.trace_id, context.span_id)
            if context.is_valid and key not in seen:
                seen.add(key)
                links.append(self._trace.Link(context))
        return links

    @contextmanager
    def server(
        self, method: str, headers: Mapping[str, str], correlation_id: str
    ) -> Iterator[ServerSpan]:
        """The span of one HTTP request, continuing the caller's `traceparent` header. Named
        by the route it matches (`ServerSpan.routed`), never by the path, which holds ids."""
        with self._tracer.start_as_current_span(
            method.upper(),
            context=self._context_of(headers.get("traceparent")),
            kind=self._trace.SpanKind.SERVER,
            record_exception=False,  # an error's message may quote the payload
            set_status_on_exception=False,
            attributes=span_attributes(
                {"http.request.method": method.upper(), "tctf.correlation_id": correlation_id}
            ),
        ) as span:
            token = _active.set(self)
            try:
                yield ServerSpan(span, method.upper())
            finally:
                _active.reset(token)

    def producer(
        self,
        *,
        message_id: str,
        message_type: str,
        operation: str,
        source: str,
        correlation_id: str,
    ) -> str | None:
        """Open and close the producer span of a message being staged: the `traceparent` the
        message carries, a child of the span running (a handler call, an HTTP request)."""
        running = self._trace.get_current_span()
        if not running.is_recording():  # a trace not sampled: its messages are not either
            return self._traceparent_of(running) if running.get_span_context().is_valid else None
        span = self._tracer.start_span(
            f"{message_type} {operation}",
            kind=self._trace.SpanKind.PRODUCER,
            attributes=span_attributes(
                {
                    "messaging.system": "tctf",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": message_type,
                    "messaging.message.id": message_id,
                    "tctf.correlation_id": correlation_id,
                    "tctf.domain": source,
                }
            ),
        )
        span.end()
        return self._traceparent_of(span)

    def middleware(self) -> Middleware:
        """A consumer span per handler call, the child of the message's producer span.

        Every record continues its own producer's trace, so a batch holding records of
        several traces adds each handler call to the right one.
        """
        tracer, trace = self._tracer, self._trace

        def wrap(handler: Handler) -> Handler:
            async def traced(delivery: Delivery) -> None:
                envelope = delivery.envelope
                if _unsampled(envelope.traceparent):
                    # Parent-based sampling (the SDK's default) records nothing of a trace
                    # not sampled: its messages carry on the producer's context as it is.
                    await handler(delivery)
                    return
                subscription = delivery.subscription
                with tracer.start_as_current_span(
                    f"{subscription.name} process",
                    context=self._parent_of(envelope.traceparent),
                    kind=trace.SpanKind.CONSUMER,
                    record_exception=False,  # an error's message may quote the payload
                    set_status_on_exception=False,
                    attributes=span_attributes(
                        {
                            "messaging.system": "tctf",
                            "messaging.operation.type": "process",
                            "messaging.destination.name": envelope.type,
                            "messaging.message.id": envelope.id,
                            "tctf.correlation_id": envelope.correlationid,
                            "tctf.domain": subscription.domain,
                            "tctf.handler": subscription.name,
                            "tctf.receive_count": delivery.receive_count,
                        }
                    ),
                ) as span:
                    delivery.context.traceparent = self._traceparent_of(span)
                    token = _active.set(self)
                    try:
                        await handler(delivery)
                    except Exception as error:
                        # The error's type only: its message may quote the payload.
                        span.set_attributes(
                            span_attributes(
                                {"tctf.outcome": "failed", "error.type": type(error).__name__}
                            )
                        )
                        span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
                        raise
                    finally:
                        _active.reset(token)
                    span.set_attributes(span_attributes({"tctf.outcome": "handled"}))

            return traced

        return wrap

    @contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue | None],
        *,
        traceparents: Iterable[str | None] = (),
        kind: str = "INTERNAL",
        new_trace: bool = False,
    ) -> Iterator[Span]:
        """A span of the runtime's own work (a relay pass, an invocation), linked to the
        producer spans of the messages it carries: the child of the span running, or the
        root of a trace of its own (`new_trace`)."""
        with self._tracer.start_as_current_span(
            name,
            context=self._root if new_trace else None,
            kind=getattr(self._trace.SpanKind, kind),
            record_exception=False,  # an error's message may quote the payload
            set_status_on_exception=False,
            attributes=span_attributes(attributes),
            links=self.links(traceparents),
        ) as span:
            try:
                yield span
            except Exception as error:
                span.set_attributes(span_attributes({"error.type": type(error).__name__}))
                span.set_status(
                    self._trace.Status(self._trace.StatusCode.ERROR, type(error).__name__)
                )
                raise

    def flush(self, timeout_millis: int = 5000) -> None:
        """Export every finished span now (a Lambda invocation's last step): a frozen
        container exports nothing, so spans left queued would be lost."""
        force_flush = getattr(self.tracer_provider, "force_flush", None)
        if force_flush is not None:
            force_flush(timeout_millis)


class RelayPublisher:
    """An outbox relay's publisher: each publish or send is a producer span of its own trace,
    linked to the producer span of every envelope it carries (their handler calls ended
    when the unit of work committed), so the relay's SDK calls are traced too."""

    def __init__(self, inner: Publisher, tracing: Tracing, domain: str) -> None:
        self._inner = inner
        self._tracing = tracing
        self._domain = domain

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        with self._relaying("publish", envelopes):
            await self._inner.publish(envelopes)

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        with self._relaying("send", envelopes):
            await self._inner.send(envelopes)

    def _relaying(self, operation: str, envelopes: Sequence[Envelope]) -> Any:
        return self._tracing.span(
            f"{self._domain} outbox relay {operation}",
            {"tctf.domain": self._domain, "messaging.batch.message_count": len(envelopes)},
            traceparents=[envelope.traceparent for envelope in envelopes],
            kind="PRODUCER",
            new_trace=True,
        )


def _unsampled(traceparent: str | None) -> bool:
    """The W3C `traceparent` says its trace is not sampled (flags without bit 0)."""
    return traceparent is not None and not int(traceparent[53:55], 16) & 1


class ServerSpan:
    """The span of one HTTP request (None: the request is not traced), told the route it
    matched and the status it answered."""

    __slots__ = ("_method", "_span")

    def __init__(self, span: Any | None, method: str = "") -> None:
        self._span = span
        self._method = method

    def routed(self, route: str, domain: str) -> None:
        if self._span is not None:
            self._span.update_name(f"{self._method} {route}")
            self._span.set_attributes(span_attributes({"http.route": route, "tctf.domain": domain}))

    def answered(self, status: int) -> None:
        if self._span is None:
            return
        self._span.set_attributes(span_attributes({"http.response.status_code": status}))
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR))


UNTRACED_REQUEST = ServerSpan(None)


def message_traceparent(
    *,
    message_id: str,
    message_type: str,
    operation: str,
    source: str,
    correlation_id: str,
    inherited: str | None,
) -> str | None:
    """The `traceparent` a staged message carries: its producer span's when a handler call or
    request is traced, else the one the context `inherited` (the envelope it handles)."""
    tracing = _active.get()
    if tracing is None:
        return inherited
    return tracing.producer(
        message_id=message_id,
        message_type=message_type,
        operation=operation,
        source=source,
        correlation_id=correlation_id,
    )


def console_tracer_provider(service: str = "tctf") -> Any:
    """An SDK tracer provider printing finished spans to stderr (`tctf run --trace`)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(resource=_resource(service, {}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


#: The values of OTEL_TRACES_EXPORTER understood here.
EXPORTERS = ("none", "console", "otlp")


def tracer_provider_from_env(env: Mapping[str, str], service: str = "tctf") -> Any | None:
    """The tracer provider the standard OTEL_* variables describe, or None: no spans, and
    OpenTelemetry is not imported.

    OTEL_TRACES_EXPORTER lists exporters (unset or `none`: none): `console` prints spans to
    stderr, `otlp` sends them over HTTP (protobuf) to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
    OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`, else a collector on localhost:4318.
    OTEL_SDK_DISABLED=true turns tracing off; OTEL_SERVICE_NAME names the service (default
    `service`, the domain).
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [
        name.strip().lower()
        for name in env.get("OTEL_TRACES_EXPORTER", "none").split(",")
        if name.strip().lower() not in ("", "none")
    ]
    if not names:
        return None
    unknown = sorted(set(names) - set(EXPORTERS))
    if unknown:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}: use {', '.join(EXPORTERS)}"
        )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(resource=_resource(service, env))
    if "console" in names:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    if "otlp" in names:
        provider.add_span_processor(BatchSpanProcessor(otlp_http_exporter(env)))
    return provider


def otlp_http_exporter(env: Mapping[str, str]) -> Any:
    """OTLP over HTTP with protobuf bodies, the transport every collector (and the AWS
    Distro for OpenTelemetry's Lambda layer) accepts."""
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol.strip().lower() != "http/protobuf":
        raise ConfigurationError(
            f"OTLP protocol {protocol!r} is not supported here: use http/protobuf"
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as missing:
        raise ConfigurationError(
            "OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http: "
            "pip install 'tctf[otlp]'"
        ) from missing
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
        endpoint = base.rstrip("/") + "/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint)


def _resource(service: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service})
