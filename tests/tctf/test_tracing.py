"""One trace follows an event through every domain it reaches."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from bus import Context, Domain, DomainSettings, Event
from bus.testing import Harness


class Ordered(Event):
    type = "ORDERED"
    order: str


class Packed(Event):
    type = "PACKED"
    order: str


async def test_spans_of_handlers_form_one_trace_linked_through_traceparent() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
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
        "warehouse.pack process",
        "shipping.ship process",
    ]
    failed, packed, shipped = spans
    assert failed.status.status_code is StatusCode.ERROR
    assert shipped.parent is not None and shipped.parent.span_id == packed.context.span_id
    assert shipped.context.trace_id == packed.context.trace_id
    [envelope] = h.published_of("PACKED")
    assert envelope.traceparent is not None
    assert f"{packed.context.span_id:016x}" in envelope.traceparent
    assert shipped.attributes is not None and shipped.attributes["tctf.event.type"] == "PACKED"
