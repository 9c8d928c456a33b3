"""In-memory throughput with OpenTelemetry tracing off and on, in the same run.

Every input event is handled by `orders`, which publishes one follow-up event handled by
`shipping`: per input, two handler calls and two published envelopes; traced, two consumer
spans and one producer span. Spans go through the SDK's BatchSpanProcessor to an exporter
that drops them (what is measured is making spans, not shipping them). events/s counts
input events until every follow-up is handled.

    .venv/bin/python benchmarks/tracing_overhead.py [--events 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from bus import Context, Domain, DomainSettings, Event
from bus.clock import SystemClock
from bus.memory import in_memory
from bus.runtime import Runtime


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str
    total: int


class OrderShipped(Event):
    type = "ORDER_SHIPPED"
    order_id: str


class Dropping(SpanExporter):
    """Takes every span and keeps none."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


async def run(count: int, tracer_provider: Any | None) -> tuple[float, float]:
    done = 0
    finished = asyncio.Event()
    orders = Domain("orders", DomainSettings())
    shipping = Domain("shipping", DomainSettings())

    @orders.on(OrderPlaced)
    async def ship(event: OrderPlaced, ctx: Context) -> None:
        ctx.publish(OrderShipped(order_id=event.order_id))

    @shipping.on(OrderShipped)
    async def notify(event: OrderShipped, ctx: Context) -> None:
        nonlocal done
        done += 1
        if done == count:
            finished.set()

    runtime = Runtime(
        [orders, shipping], in_memory(), clock=SystemClock(), tracer_provider=tracer_provider
    )
    events = [OrderPlaced(order_id=f"o{n}", total=n) for n in range(count)]
    async with runtime.running():
        start, cpu = time.perf_counter(), time.process_time()
        for event in events:
            await runtime.publish(event, source="checkout")
        await finished.wait()
        return time.perf_counter() - start, time.process_time() - cpu


def measure(count: int, sampled: float | None) -> tuple[float, float, int]:
    """Input events per second of wall time and of this process's CPU time; spans made.

    `sampled`: the share of traces recorded (None: tracing off)."""
    gc.collect()
    provider, exporter = None, Dropping()
    if sampled is not None:
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(sampled)))
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536))
    wall, cpu = asyncio.run(run(count, provider))
    if provider is not None:
        provider.shutdown()  # exports what is queued: every span was made
    return count / wall, count / cpu, exporter.exported


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    names = {
        None: "tracing off",
        1.0: "tracing on, every trace recorded",
        0.1: "tracing on, 1 trace in 10 recorded (parentbased_traceidratio 0.1)",
    }
    runs: dict[float | None, list[tuple[float, float, int]]] = {t: [] for t in names}
    for _ in range(args.repeat):  # interleaved: a busier moment weighs on each alike
        for sampled in names:
            runs[sampled].append(measure(args.events, sampled))
    wall = {t: statistics.median(r[0] for r in runs[t]) for t in runs}
    cpu = {t: statistics.median(r[1] for r in runs[t]) for t in runs}
    print(f"input events/s, median of {args.repeat}; {args.events} inputs, 2 handler calls each")
    print("(CPU: per second of this process's CPU time, what a shared machine does not skew)\n")
    print("| contender | events/s (wall) | events/s (CPU) | spans per run | CPU overhead |")
    print("|---|---:|---:|---:|---:|")
    for traced, name in names.items():
        print(
            f"| {name} | {wall[traced]:,.0f} | {cpu[traced]:,.0f} | {runs[traced][-1][2]:,} | "
            f"{(cpu[None] / cpu[traced] - 1) * 100:+.0f}% |"
        )


if __name__ == "__main__":
    main()
