"""In-memory throughput with logs and metrics off and on, in the same run.

The scenario of `bus_throughput.py` (N five-field events published to 1 and to 10
subscribers, each encoded and decoded+validated per delivery), where each handler also counts
a business metric (`ctx.metrics.add`). Off: the delivery log below its level (nothing built)
and metrics counted, never written — what the runtime did before. On: every delivery's JSON
line formatted (redacted) and written to a file, set up by `configure_logging` as under
`tctf run`, the platform's per-handler metrics recorded, and EMF documents written every
second and at the end. The modes alternate within each repeat, so both see the same load.

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
from pathlib import Path

from bus_throughput import order, subscribers

from bus.clock import SystemClock
from bus.emf import EmfWriter
from bus.memory import in_memory
from bus.observability import configure_logging
from bus.runtime import Runtime


async def run(count: int, fanout: int, emf: EmfWriter | None) -> float:
    """CPU seconds this process spent publishing `count` events until every handler call
    was done: CPU time, not wall time, so that other processes' load on a shared machine
    does not land in one mode more than the other."""
    finished = asyncio.Event()
    domains = subscribers(fanout, count, finished, metric="OrdersSeen")
    runtime = Runtime(domains, in_memory(), clock=SystemClock(), metrics=emf, metrics_interval=1.0)
    events = [order(n) for n in range(count)]
    async with runtime.running():
        start = time.process_time()
        for event in events:
            await runtime.publish(event, source="orders")
        await finished.wait()
        elapsed = time.process_time() - start
    return elapsed


def measure(count: int, fanout: int, repeat: int, sink: Path) -> tuple[float, float]:
    """Median events per CPU second with logs and metrics off, then on."""
    off: list[float] = []
    on: list[float] = []
    with sink.open("a") as lines, sink.open("ab") as metrics_out:
        # What `tctf run` and Lambda set up, to a file instead of stdout.
        configure_logging("INFO", stream=lines)
        for _ in range(repeat):
            gc.collect()
            logging.getLogger("tctf").setLevel(logging.WARNING)
            off.append(count / asyncio.run(run(count, fanout, None)))
            gc.collect()
            logging.getLogger("tctf").setLevel(logging.INFO)
            emf = EmfWriter("bench", metrics_out.write)
            on.append(count / asyncio.run(run(count, fanout, emf)))
        for handler in logging.getLogger("tctf").handlers:  # its file closes with this block
            handler.close()
        logging.getLogger("tctf").handlers.clear()
    return statistics.median(off), statistics.median(on)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"events per CPU second, median of {args.repeat}, modes alternating in each repeat\n")
    print("| subscribers | logs + metrics off | on | overhead |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        sink = Path(folder) / "lines.jsonl"
        for fanout in (1, 10):
            off, on = measure(args.events, fanout, args.repeat, sink)
            print(f"| {fanout} | {off:,.0f} | {on:,.0f} | {off / on - 1:.0%} |")


if __name__ == "__main__":
    main()
