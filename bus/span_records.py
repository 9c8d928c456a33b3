"""Spans recorded as plain fields while the bus works, made into the SDK's spans for export.

The OpenTelemetry SDK's own span costs more to start, make current and end than the bus
spends on a whole delivery (locks, attribute validation, a processor call at each end). What
`bus.tracing` opens on its hot path — server, producer and consumer spans — is a `RecordedSpan`
instead: ids, name, times and attributes in slots, a real `opentelemetry.trace.Span` to the
API (a handler's own spans and the AWS client spans nest under it through the current
context). The ids, the sampler's decision (taken once per trace, at its root; every span
below follows its parent's sampled flag), the resource and the span processors are the
tracer provider's own; the `ReadableSpan` each processor gets is built once the loop's
current step is done, or at `SpanRecorder.drain` (a Lambda invocation's end, a flush).

A span of a trace the sampler dropped is an `UnsampledSpan` instead: no more than the context
it passes on (its `traceparent`), so that a dropped trace costs next to nothing and still
carries its trace id, unsampled, to every span and message below it.

Imported only by `bus.tracing.Tracing`, so OpenTelemetry stays off an untraced import path.
"""

from __future__ import annotations

import atexit
import time
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util import types

from bus.held import HeldForStep
from bus.redaction import redact_attributes, redact_text

_SAMPLED = 0x01
_RECORD_AND_SAMPLE = Decision.RECORD_AND_SAMPLE
#: A `traceparent` of a trace id (as a number, or as its 32 hex digits), a span id and flags:
#: printf style measured faster than an f-string, once or more per span.
_TRACEPARENT = "00-%032x-%016x-%02x"
_TRACEPARENT_OF_HEX = "00-%s-%016x-%02x"
_UNSET = trace.Status(trace.StatusCode.UNSET)
#: What a sampler is told a root's parent is: nothing (None would read the current context).
_NO_PARENT = Context()
#: Processors whose `on_start` does nothing: with only these, none is called per span.
_QUIET_ON_START = (BatchSpanProcessor, SimpleSpanProcessor)
#: Ended spans held before they are handed over at once, whatever the loop does.
_HOLD_AT_MOST = 512


class RecordedSpan(trace.Span):
    """One span's fields; `SpanRecorder.finished` makes it a `ReadableSpan`."""

    __slots__ = (
        "_context",
        "_recorder",
        "_traceparent",
        "attributes",
        "end_time",
        "events",
        "flags",
        "kind",
        "links",
        "name",
        "parent_id",
        "parent_remote",
        "sampled",
        "span_id",
        "start_time",
        "status",
        "trace_hex",
        "trace_state",
    )

    def __init__(
        self,
        recorder: SpanRecorder,
        name: str,
        kind: trace.SpanKind,
        trace_hex: str,
        span_id: int,
        flags: int,
        parent_id: int | None,
        attributes: dict[str, Any],
        *,
        parent_remote: bool = False,
        trace_state: trace.TraceState | None = None,
        links: Sequence[trace.Link] = (),
    ) -> None:
        self._recorder = recorder
        self._context: trace.SpanContext | None = None
        self._traceparent: str | None = None
        self.name = name
        self.kind = kind
        #: The trace id as the 32 hex digits of a `traceparent`.
        self.trace_hex = trace_hex
        self.span_id = span_id
        self.flags = flags
        self.sampled = bool(flags & _SAMPLED)
        self.parent_id = parent_id
        self.parent_remote = parent_remote
        self.trace_state = trace_state
        self.attributes = attributes
        self.links = links
        self.events: list[Event] | None = None
        self.status = _UNSET
        self.start_time = time.time_ns()
        self.end_time: int | None = None

    @property
    def traceparent(self) -> str:
        """This span's context as a W3C `traceparent` header."""
        header = self._traceparent
        if header is None:
            header = self._traceparent = _TRACEPARENT_OF_HEX % (
                self.trace_hex,
                self.span_id,
                self.flags,
            )
        return header

    def get_span_context(self) -> trace.SpanContext:
        context = self._context
        if context is None:
            context = self._context = trace.SpanContext(
                int(self.trace_hex, 16),
                self.span_id,
                is_remote=False,
                trace_flags=_trace_flags(self.flags),
                trace_state=self.trace_state or _NO_STATE,
            )
        return context

    def is_recording(self) -> bool:
        return self.sampled and self.end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self.is_recording():
            # What user code sets passes the filter the platform's attributes pass.
            self.attributes.update(redact_attributes(_valid(attributes)))

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        self.set_attributes({key: value})

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        if not self.is_recording():
            return
        if self.events is None:
            self.events = []
        self.events.append(
            Event(
                name,
                redact_attributes(_valid(attributes or {})),
                timestamp if timestamp is not None else time.time_ns(),
            )
        )

    def add_link(self, context: trace.SpanContext, attributes: types.Attributes = None) -> None:
        if self.is_recording() and context.is_valid:
            self.links = (*self.links, trace.Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.is_recording():
            self.name = name

    def set_status(
        self, status: trace.Status | trace.StatusCode, description: str | None = None
    ) -> None:
        if not self.is_recording() or self.status.status_code is trace.StatusCode.OK:
            return  # OK is final, as the SDK has it
        if isinstance(status, trace.StatusCode):
            status = trace.Status(status, description)
        if status.status_code is not trace.StatusCode.UNSET:
            self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # The type, and the message through the redaction filter: it may quote the payload.
        self.add_event(
            "exception",
            {
                "exception.type": type(exception).__name__,
                "exception.message": redact_text(str(exception)),
                "exception.escaped": str(escaped),
                **(attributes or {}),
            },
            timestamp,
        )

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time if end_time is not None else time.time_ns()
        if self.sampled:
            self._recorder.finished(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.end()


class UnsampledSpan(trace.NonRecordingSpan):
    """A span of a trace not sampled: the context it passes on and nothing else, a
    non-recording span to the API (a handler's own spans below it continue its trace,
    unsampled, as the parent-based sampler has them). Its context is made only when asked
    for; every other method is `NonRecordingSpan`'s no-op."""

    __slots__ = ("_made", "remote", "trace_state", "traceparent")

    sampled = False

    def __init__(
        self, traceparent: str, remote: bool = False, trace_state: trace.TraceState | None = None
    ) -> None:
        #: This span's context as a W3C `traceparent` header (flags without the sampled bit).
        self.traceparent = traceparent
        self.remote = remote
        self.trace_state = trace_state
        self._made: trace.SpanContext | None = None

    def get_span_context(self) -> trace.SpanContext:
        context = self._made
        if context is None:
            header = self.traceparent
            context = self._made = trace.SpanContext(
                int(header[3:35], 16),
                int(header[36:52], 16),
                is_remote=self.remote,
                trace_flags=_trace_flags(int(header[53:55], 16)),
                trace_state=self.trace_state or _NO_STATE,
            )
        return context

    def __repr__(self) -> str:
        return f"UnsampledSpan({self.traceparent})"


class SpanRecorder:
    """The recorded spans of one SDK tracer: opened with its id generator and sampler,
    handed to its span processors as `ReadableSpan`s."""

    def __init__(self, tracer: SdkTracer) -> None:
        self._sampler = tracer.sampler
        self._ids = tracer.id_generator
        #: W3C's random-trace-id flag, which the SDK sets when its trace ids are random.
        self._random = 0x02 if self._ids.is_trace_id_random() else 0
        #: Told of spans as the SDK tells them (`on_start` with a span of ours).
        self._processor: Any = tracer.span_processor
        self._resource = tracer.resource
        self._scope = InstrumentationScope("tctf")
        processors = getattr(self._processor, "_span_processors", None)
        self._tell_start = processors is None or not all(
            type(one) in _QUIET_ON_START for one in processors
        )
        self._ended = HeldForStep(self._hand_over, _HOLD_AT_MOST)
        # Registered after the provider's own shutdown at exit, so run before it: the spans
        # of a loop's last step reach the processors before they flush and close.
        atexit.register(_drain_at_exit, weakref.ref(self))

    def root(
        self,
        name: str,
        kind: trace.SpanKind,
        attributes: dict[str, Any],
        links: Sequence[trace.Link] = (),
    ) -> RecordedSpan | UnsampledSpan:
        """The first span of a new trace: the sampler decides here, once for the trace."""
        trace_id = self._ids.generate_trace_id()
        result = self._sampler.should_sample(_NO_PARENT, trace_id, name, kind, attributes, links)
        if result.decision is not _RECORD_AND_SAMPLE:
            return UnsampledSpan(
                _TRACEPARENT % (trace_id, self._ids.generate_span_id(), self._random),
                False,
                result.trace_state,
            )
        if result.attributes:  # what the sampler adds (it is given, and gives back, ours)
            attributes.update(result.attributes)
        return self._opened(
            RecordedSpan(
                self,
                name,
                kind,
                f"{trace_id:032x}",
                self._ids.generate_span_id(),
                self._random | _SAMPLED,
                None,
                attributes,
                trace_state=result.trace_state,
                links=links,
            )
        )

    def child(
        self,
        name: str,
        kind: trace.SpanKind,
        attributes: dict[str, Any],
        trace_hex: str,
        parent_id: int,
        flags: int,
        *,
        remote: bool = False,
        trace_state: trace.TraceState | None = None,
    ) -> RecordedSpan | UnsampledSpan:
        """A span under the span `parent_id` of trace `trace_hex`, sampled as its parent is
        (`flags`, the parent's trace flags)."""
        if not flags & _SAMPLED:
            return UnsampledSpan(
                _TRACEPARENT_OF_HEX % (trace_hex, self._ids.generate_span_id(), flags),
                False,
                trace_state,
            )
        return self._opened(
            RecordedSpan(
                self,
                name,
                kind,
                trace_hex,
                self._ids.generate_span_id(),
                flags,
                parent_id,
                attributes,
                parent_remote=remote,
                trace_state=trace_state,
            )
        )

    def _opened(self, span: RecordedSpan) -> RecordedSpan:
        if self._tell_start:
            self._processor.on_start(span, parent_context=None)
        return span

    def finished(self, span: RecordedSpan) -> None:
        """Hold an ended span until the loop's current step is done (the spans of a whole
        batch handed over together), or hand it over now outside a loop."""
        self._ended.add(span)

    def drain(self) -> None:
        """Hand every ended span to the tracer provider's span processors now."""
        self._ended.hand_over()

    def _hand_over(self, ended: list[RecordedSpan]) -> None:
        processor, resource, scope = self._processor, self._resource, self._scope
        # Spans of one fan-out share their parent: its context is made once for them.
        parent_key: tuple[str, int, bool] | None = None
        parent = None
        for span in ended:
            context = span.get_span_context()
            if span.parent_id is None:
                parent = None
                parent_key = None
            elif parent_key != (span.trace_hex, span.parent_id, span.parent_remote):
                parent_key = (span.trace_hex, span.parent_id, span.parent_remote)
                parent = trace.SpanContext(
                    context.trace_id,
                    span.parent_id,
                    is_remote=span.parent_remote,
                    trace_flags=context.trace_flags,
                    trace_state=context.trace_state,
                )
            if self._tell_start:
                processor._on_ending(span)  # the SDK's own step before on_end
            processor.on_end(
                ReadableSpan(
                    span.name,
                    context,
                    parent,
                    resource,
                    span.attributes,
                    tuple(span.events) if span.events else (),
                    span.links,
                    span.kind,
                    None,
                    span.status,
                    span.start_time,
                    span.end_time,
                    scope,
                )
            )


def _drain_at_exit(recorder: weakref.ref[SpanRecorder]) -> None:
    alive = recorder()
    if alive is not None:
        alive.drain()


#: The trace state of a span whose trace carries none, made once (the SDK makes one a span).
_NO_STATE = trace.TraceState()
_FLAGS = {flags: trace.TraceFlags(flags) for flags in range(4)}


def _trace_flags(flags: int) -> trace.TraceFlags:
    made = _FLAGS.get(flags)
    return made if made is not None else trace.TraceFlags(flags)


def _valid(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes OpenTelemetry accepts (a primitive or a sequence of them), sequences
    as tuples; anything else is left out, as the SDK leaves it out."""
    valid: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, str | bool | int | float):
            valid[key] = value
        elif isinstance(value, Sequence) and all(
            isinstance(item, str | bool | int | float) for item in value
        ):
            valid[key] = tuple(value)
    return valid
