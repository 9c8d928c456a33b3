"""In-memory throughput with logs, metrics and tracing off and on, in the same run.

The scenario of `bus_throughput.py` (N five-field events published to 1 and to 10
subscribers, each encoded and decoded+validated per delivery), where each handler also counts
a business metric (`ctx.metrics.add`) and each event is published as a request would publish
it: inside a server span when tracing is on (`Tracing.server`, as `HttpRouter` opens one), so
that one event is one trace — a server span, a producer span and a consumer span per
subscriber.

Modes, alternating within each repeat so that every mode sees the same load:

- off: the delivery log below its level (nothing built), metrics counted and never written,
  no tracer provider;
- logs + metrics: every delivery's JSON line formatted (redacted) and written to a file, set
  up by `configure_logging` as under `tctf run`, the platform's per-handler metrics recorded,
  EMF documents written every second and at the end;
- everything, every trace recorded: logs + metrics and an SDK `TracerProvider` whose
  `BatchSpanProcessor` hands every span to an exporter that drops it (what is measured is
  making spans, not shipping them);
- everything, 1 trace in 10 recorded: the same under `parentbased_traceidratio` 0.1;
- everything, 1 trace in 100 recorded: 0.01, a production-like ratio;
- everything, no trace recorded: 0.0, what tracing costs a trace the sampler drops (its
  root asks the sampler, its context still travels with every message).

Throughput is events per second of the process's CPU time (every thread: the span
processor's too), which other people's load on a shared machine does not skew.

    .venv/bin/python benchmarks/observability_overhead.py [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bus_throughput import order, subscribers
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from bus.clock import SystemClock
from bus.emf import EmfWriter
from bus.memory import in_memory
from bus.observability import configure_logging
from bus.runtime import Runtime


class Dropping(SpanExporter):
    """Takes every span and keeps none."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


#: Mode name -> (logs and metrics on, share of traces recorded or None for no tracing).
MODES: dict[str, tuple[bool, float | None]] = {
    "off": (False, None),
    "logs + metrics": (True, None),
    "everything, every trace": (True, 1.0),
    "everything, 1 trace in 10": (True, 0.1),
    "everything, 1 trace in 100": (True, 0.01),
    "everything, no trace recorded": (True, 0.0),
}


async def run(count: int, fanout: int, emf: EmfWriter | None, provider: Any | None) -> float:
    """CPU seconds this process spent publishing `count` events until every handler call
    was done."""
    finished = asyncio.Event()
    domains = subscribers(fanout, count, finished, metric="OrdersSeen")
    runtime = Runtime(
        domains,
        in_memory(),
        clock=SystemClock(),
        metrics=emf,
        metrics_interval=1.0,
        tracer_provider=provider,
    )
    events = [order(n) for n in range(count)]
    tracing = runtime.tracing
    async with runtime.running():
        start = time.process_time()
        if tracing is None:
            for event in events:
                await runtime.publish(event, source="orders")
        else:
            for event in events:
                correlation_id = runtime.ids()
                with tracing.server("POST", {}, correlation_id) as span:
                    span.routed("/orders", "orders")
                    await runtime.publish(event, source="orders", correlation_id=correlation_id)
                    span.answered(202)
        await finished.wait()
        if provider is not None:
            provider.force_flush()  # every span made is handed to the exporter, in the time
        elapsed = time.process_time() - start
    return elapsed


def one_run(count: int, fanout: int, mode: str, metrics_out: IO[bytes]) -> tuple[float, int]:
    """Events per CPU second in `mode`, and the spans exported."""
    observed, sampled = MODES[mode]
    gc.collect()
    logging.getLogger("tctf").setLevel(logging.INFO if observed else logging.WARNING)
    emf = EmfWriter("bench", metrics_out.write) if observed else None
    provider, exporter = None, Dropping()
    if sampled is not None:
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(sampled)))
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536))
    rate = count / asyncio.run(run(count, fanout, emf, provider))
    if provider is not None:
        provider.shutdown()
    return rate, exporter.exported


def measure(
    count: int, fanout: int, repeat: int, modes: Sequence[str], sink: Path
) -> dict[str, tuple[float, int]]:
    """Median events per CPU second of each mode, and the spans of its last run."""
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    spans: dict[str, int] = {}
    with sink.open("a") as lines, sink.open("ab") as metrics_out:
        # What `tctf run` and Lambda set up, to a file instead of stdout.
        configure_logging("INFO", stream=lines)
        for _ in range(repeat):
            for mode in modes:
                rate, spans[mode] = one_run(count, fanout, mode, metrics_out)
                rates[mode].append(rate)
        for handler in logging.getLogger("tctf").handlers:  # its file closes with this block
            handler.close()
        logging.getLogger("tctf").handlers.clear()
    return {mode: (statistics.median(rates[mode]), spans[mode]) for mode in modes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fanout", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()
    modes = args.modes if "off" in args.modes else ["off", *args.modes]
    print(f"events per CPU second, median of {args.repeat}, modes alternating in each repeat\n")
    print("| subscribers | mode | events/s (CPU) | spans per run | overhead |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        sink = Path(folder) / "lines.jsonl"
        for fanout in args.fanout:
            results = measure(args.events, fanout, args.repeat, modes, sink)
            off = results["off"][0]
            for mode, (rate, spans) in results.items():
                print(f"| {fanout} | {mode} | {rate:,.0f} | {spans:,} | {off / rate - 1:.0%} |")


if __name__ == "__main__":
    main()
