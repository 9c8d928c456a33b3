"""What every runtime records of a delivery: one JSON log line per outcome, a span per call.

Log lines carry the keys Lambda users search for (`level`, `message`, `timestamp`, `service`,
`correlation_id`, `cold_start`, plus what a caller passes in `extra`); spans continue the
event's W3C `traceparent`. The assembly (`bus.assembly`) puts both on every runtime.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from bus.dispatch import Outcome
from bus.errors import ConfigurationError
from bus.middleware import Delivery, Handler, Middleware, current_correlation_id

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_cold_start = True


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON line."""

    def __init__(self, service: str = "tctf") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        global _cold_start
        line: dict[str, Any] = {
            "level": record.levelname,
            "message": record.getMessage(),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "service": getattr(record, "service", self.service),
            "correlation_id": getattr(record, "correlation_id", None)
            or current_correlation_id.get(),
            "cold_start": _cold_start,
            "logger": record.name,
        }
        _cold_start = False
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO", service: str = "tctf") -> None:
    """Send every `tctf.*` log line to stdout as JSON."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger("tctf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


_deliveries = logging.getLogger("tctf.delivery")


def log_outcome(outcome: Outcome) -> None:
    """One line per record and handler: type, domain, handler, correlation id, outcome."""
    if outcome.status == "filtered":
        return
    level = logging.INFO if outcome.status in ("handled", "skipped") else logging.WARNING
    if not _deliveries.isEnabledFor(level):
        return  # per delivery: build nothing nobody reads
    envelope = outcome.envelope
    _deliveries.log(
        level,
        f"{outcome.status} {envelope.type if envelope else 'record'}",
        extra={
            "service": outcome.domain,
            "domain": outcome.domain,
            "handler": outcome.handler,
            "type": envelope.type if envelope else None,
            "event_id": envelope.id if envelope else None,
            "correlation_id": envelope.correlationid if envelope else None,
            "record_id": outcome.record_id,
            "outcome": outcome.status,
            "error": outcome.error,
        },
    )


def tracing(tracer_provider: Any | None = None) -> Middleware:
    """A span per handler call, continuing the trace of the event's `traceparent`.

    Events the handler publishes carry this span as their `traceparent`, so one trace follows
    a request through every domain it reaches (W3C Trace Context, as X-Ray and OTLP read it).
    """
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    tracer = trace.get_tracer("tctf", tracer_provider=tracer_provider)
    propagator = TraceContextTextMapPropagator()

    def wrap(handler: Handler) -> Handler:
        async def traced(delivery: Delivery) -> None:
            envelope = delivery.envelope
            parent = propagator.extract(
                {"traceparent": envelope.traceparent} if envelope.traceparent else {}
            )
            with tracer.start_as_current_span(
                f"{delivery.subscription.name} process",
                context=parent,
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "tctf",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": delivery.subscription.domain,
                    "messaging.message.id": envelope.id,
                    "messaging.message.conversation_id": envelope.correlationid,
                    "tctf.event.type": envelope.type,
                    "tctf.receive_count": delivery.receive_count,
                },
            ) as span:
                carrier: dict[str, str] = {}
                propagator.inject(carrier)
                delivery.context.traceparent = carrier.get("traceparent")
                try:
                    await handler(delivery)
                except Exception as error:
                    span.record_exception(error)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
                    raise

        return traced

    return wrap


def console_tracer_provider() -> Any:
    """An SDK tracer provider printing finished spans to stderr (`tctf run --trace`)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


def tracer_provider_from_env(env: Mapping[str, str]) -> Any | None:
    """The tracer provider OTEL_TRACES_EXPORTER names: `console` prints spans to stderr;
    unset or `none` gives None (no spans, OpenTelemetry not imported)."""
    exporter = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter in ("", "none"):
        return None
    if exporter == "console":
        return console_tracer_provider()
    raise ConfigurationError(
        f"OTEL_TRACES_EXPORTER={exporter!r} is not supported here: use console or none"
    )
