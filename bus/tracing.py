"""Traces: the OpenTelemetry spans of what the bus does, alike on every runtime.

A server span per HTTP request (continuing the caller's `traceparent`), a producer span per
event or task a handler or route stages (whose context becomes the envelope's `traceparent`,
so it crosses every hop the envelope makes: SQS and SNS message attributes, EventBridge
detail, the outbox and its relay), and a consumer span per handler call, the child of the
producer span of the message it handles. Spans carry ids, types, names, outcomes and timings,
never a body or a payload field, and pass the log lines' redaction filter (`span_attributes`,
or `redact_text` for what came from outside on the hot path). Those three are recorded
spans (`bus.span_records`); the sampler is asked once per trace, at its root.

OpenTelemetry is imported only when a `Tracing` is made, so a runtime without a tracer
provider never loads it (a Lambda's cold start, decision 0008).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from bus.errors import ConfigurationError
from bus.redaction import redact_attributes, redact_text

if TYPE_CHECKING:  # the context imports this module: middleware loads after it
    from opentelemetry.trace import Link, Span

    from bus.dispatch import Publisher
    from bus.envelope import Envelope
    from bus.middleware import Delivery, Handler, Middleware
    from bus.span_records import RecordedSpan, SpanRecorder, UnsampledSpan

#: An attribute value OpenTelemetry accepts.
AttributeValue = str | bool | int | float

#: The tracing of the handler call or HTTP request being run: what stages a message opens its
#: producer span there. None outside them, or when nothing traces.
_active: ContextVar[Tracing | None] = ContextVar("tctf_tracing", default=None)


def span_attributes(values: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    """The attributes a span gets from `values`: those of the runtime's spans and the client
    spans pass through here (the hot path's server, producer and consumer spans filter only
    the values that came from outside, with the same `redact_text`).

    Only ids, types, names, outcomes and timings are ever given; absent values are left out,
    and what is left passes the one redaction filter the log lines pass (`bus.redaction`),
    so an e-mail address or a credential in an id or a type never reaches an exporter.
    """
    return redact_attributes({key: value for key, value in values.items() if value is not None})


class Tracing:
    """Spans of one tracer provider: server, producer and consumer spans, and their flush.

    Those three, opened on the hot path, are `bus.span_records`' recorded spans, handed to
    the provider's span processors once the loop's current step is done; a provider that
    is not the SDK's (one turned off) records none of them.
    """

    def __init__(self, tracer_provider: Any) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from bus import span_records

        self.tracer_provider = tracer_provider
        self._trace = trace
        self._tracer = trace.get_tracer("tctf", tracer_provider=tracer_provider)
        self._recorder = _recorder_for(tracer_provider, self._tracer)
        self._recorded = span_records.RecordedSpan
        self._unsampled = span_records.UnsampledSpan
        #: The key under which a context holds its current span: a context holding only
        #: that span is made in one step on the hot path (`set_span_in_context` copies one).
        (self._span_key,) = trace.set_span_in_context(trace.INVALID_SPAN, context.Context())
        self._context_type = context.Context
        self._current_context = context.get_current
        self._propagator = TraceContextTextMapPropagator()
        self._root = context.Context()
        self._attach = context.attach
        self._detach = context.detach

    def _context_of(self, traceparent: str | None) -> Any:
        """The context whose span is the one `traceparent` names (an empty one for none)."""
        return self._propagator.extract({"traceparent": traceparent} if traceparent else {})

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

    def server(
        self, method: str, headers: Mapping[str, str], correlation_id: str
    ) -> AbstractContextManager[ServerSpan]:
        """The span of one HTTP request, continuing the caller's `traceparent` header. Named
        by the route it matches (`ServerSpan.routed`), never by the path, which holds ids."""
        recorder = self._recorder
        if recorder is None:
            return nullcontext(UNTRACED_REQUEST)
        method = method.upper()
        # Both values came with the request: they pass the redaction filter if the span is
        # recorded (the sampler, in process, sees them as they came; a dropped trace keeps
        # no attribute).
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "tctf.correlation_id": correlation_id,
        }
        kind = self._trace.SpanKind.SERVER
        header = headers.get("traceparent")
        caller = (
            self._trace.get_current_span(self._context_of(header)).get_span_context()
            if header
            else None
        )
        if caller is not None and caller.is_valid:
            span = recorder.child(
                method,
                kind,
                attributes,
                f"{caller.trace_id:032x}",
                caller.span_id,
                int(caller.trace_flags),
                remote=True,
                trace_state=caller.trace_state,
            )
        else:
            span = recorder.root(method, kind, attributes)
        if span.sampled:
            attributes["http.request.method"] = redact_text(method)
            attributes["tctf.correlation_id"] = redact_text(correlation_id)
        return _Serving(self, span, method)

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
        # The current context's span read as `get_current_span` reads it, without its
        # abstract-class check for the bus's own two kinds of span.
        running: Any = self._current_context().get(self._span_key)
        kind = type(running)
        if kind is self._unsampled:  # a trace not sampled: its messages are not either
            traceparent: str = running.traceparent
            return traceparent
        if kind is self._recorded:
            trace_hex, parent_id, flags = running.trace_hex, running.span_id, running.flags
        else:  # a span of the handler's own, or of the runtime's (`span`)
            running = self._trace.get_current_span()
            context = running.get_span_context()
            if not running.is_recording():
                return self._traceparent_of(running) if context.is_valid else None
            trace_hex, parent_id = f"{context.trace_id:032x}", context.span_id
            flags = int(context.trace_flags)
        recorder = self._recorder
        if recorder is None:
            return self._traceparent_of(running)
        # The message's id and type, the domain: the platform's own values, never data.
        span = recorder.child(
            f"{message_type} {operation}",
            self._trace.SpanKind.PRODUCER,
            {
                "messaging.system": "tctf",
                "messaging.operation.type": "send",
                "messaging.destination.name": message_type,
                "messaging.message.id": message_id,
                "tctf.correlation_id": redact_text(correlation_id),
                "tctf.domain": source,
            },
            trace_hex,
            parent_id,
            flags,
        )
        span.end()
        return span.traceparent

    def middleware(self) -> Middleware:
        """A consumer span per handler call, the child of the message's producer span.

        Every record continues its own producer's trace, so a batch holding records of
        several traces adds each handler call to the right one.
        """
        recorder = self._recorder
        if recorder is None:
            return _untraced
        trace, root, attach, detach = self._trace, self._root, self._attach, self._detach
        unsampled, in_context, span_key = self._unsampled, self._context_type, self._span_key
        unsampled_digits = _UNSAMPLED_LAST_DIGITS
        consumer, set_span_in_context = trace.SpanKind.CONSUMER, trace.set_span_in_context
        error_status = trace.StatusCode.ERROR

        def wrap(handler: Handler) -> Handler:
            async def traced(delivery: Delivery) -> None:
                envelope = delivery.envelope
                traceparent = envelope.traceparent
                if traceparent is not None and traceparent[54] in unsampled_digits:
                    # Parent-based sampling (the SDK's default) records nothing of a trace
                    # not sampled: its messages carry on the producer's context as it is,
                    # and the handler's own spans continue it, unrecorded.
                    token = attach(in_context({span_key: unsampled(traceparent, True)}))
                    try:
                        await handler(delivery)
                    finally:
                        detach(token)
                    return
                subscription = delivery.subscription
                # The type was routed to this handler, the names are the code's: only the
                # ids that came with the envelope pass the redaction filter.
                attributes: dict[str, AttributeValue] = {
                    "messaging.system": "tctf",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": envelope.type,
                    "messaging.message.id": redact_text(envelope.id),
                    "tctf.correlation_id": redact_text(envelope.correlationid),
                    "tctf.domain": subscription.domain,
                    "tctf.handler": subscription.name,
                    "tctf.receive_count": delivery.receive_count,
                }
                name = f"{subscription.name} process"
                if traceparent is None:
                    span = recorder.root(name, consumer, attributes)
                else:
                    span = recorder.child(
                        name,
                        consumer,
                        attributes,
                        traceparent[3:35],
                        int(traceparent[36:52], 16),
                        int(traceparent[53:55], 16),
                        remote=True,
                    )
                delivery.context.traceparent = span.traceparent
                token = attach(set_span_in_context(span, root))
                active = _active.set(self)
                try:
                    await handler(delivery)
                except Exception as error:
                    # The error's type only: its message may quote the payload.
                    attributes["tctf.outcome"] = "failed"
                    attributes["error.type"] = type(error).__name__
                    span.set_status(trace.Status(error_status, type(error).__name__))
                    raise
                else:
                    attributes["tctf.outcome"] = "handled"
                finally:
                    _active.reset(active)
                    detach(token)
                    span.end()

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
        if self._recorder is not None:
            self._recorder.drain()
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


#: The recorder of each SDK tracer provider, shared by every `Tracing` made of it (one per
#: dispatcher), so that a flush of any hands over the spans of all.
_recorders: WeakKeyDictionary[Any, SpanRecorder] = WeakKeyDictionary()


def _recorder_for(tracer_provider: Any, tracer: Any) -> SpanRecorder | None:
    from opentelemetry.sdk.trace import Tracer as SdkTracer

    from bus.span_records import SpanRecorder

    if not isinstance(tracer, SdkTracer):
        return None
    recorder = _recorders.get(tracer_provider)
    if recorder is None:
        recorder = _recorders[tracer_provider] = SpanRecorder(tracer)
    return recorder


#: The last hex digit of a `traceparent`'s flags when their sampled bit is not set.
_UNSAMPLED_LAST_DIGITS = frozenset("02468ace")


def _untraced(handler: Handler) -> Handler:
    return handler


class _Serving:
    """A server span made current for the request's duration, and ended after it."""

    __slots__ = ("_active", "_method", "_span", "_token", "_tracing")

    def __init__(self, tracing: Tracing, span: RecordedSpan | UnsampledSpan, method: str) -> None:
        self._tracing = tracing
        self._span = span
        self._method = method

    def __enter__(self) -> ServerSpan:
        tracing, span = self._tracing, self._span
        self._token = tracing._attach(tracing._context_type({tracing._span_key: span}))
        self._active = _active.set(tracing)
        return ServerSpan(span, self._method) if span.sampled else UNTRACED_REQUEST

    def __exit__(self, *exception: object) -> None:
        _active.reset(self._active)
        self._tracing._detach(self._token)
        self._span.end()


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
            # The route's template and its domain: the code's own names.
            self._span.attributes.update({"http.route": route, "tctf.domain": domain})

    def answered(self, status: int) -> None:
        if self._span is None:
            return
        self._span.attributes["http.response.status_code"] = status
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
