"""Publish→handled latency and throughput: the AWS transports on moto server beside the
in-memory transport, in one run.

Latency: one event at a time, each published only after the previous one was handled
(publish call + SNS/EventBridge → SQS → long poll → Lambda-shaped event → dispatcher).
Throughput: events published in batches of ten as fast as the publisher goes, timed until
the last is handled. moto server runs in this process on a loopback port, so the AWS rows
measure moto and the HTTP round trips, not AWS.

    .venv/bin/python benchmarks/aws_roundtrip.py [--latency 200] [--throughput 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from adapters.aws.eventbridge import eventbridge
from adapters.aws.local import LocalEndpoint
from adapters.aws.session import AwsSettings
from adapters.aws.sns_sqs import sns_sqs
from adapters.lambda_.sqs import sqs_batch_handler
from bus import Context, Domain, DomainSettings, Event
from bus.memory import in_memory
from bus.runtime import Runtime, TransportFactory


class Ping(Event):
    type = "PING"
    seq: int


@dataclass
class Result:
    transport: str
    p50_ms: float
    p99_ms: float
    events_per_s: float
    burst: int


def bench_domain(on_handled: Callable[[int], None]) -> Domain:
    domain = Domain("bench", DomainSettings(visibility_timeout=30, concurrency=4))

    @domain.on(Ping)
    async def pong(event: Ping, ctx: Context) -> None:
        on_handled(event.seq)

    return domain


async def measure(name: str, factory: TransportFactory, latency_n: int, burst_n: int) -> Result:
    handled: dict[int, float] = {}
    waiting: dict[int, anyio.Event] = {}
    done = anyio.Event()
    target = 0

    def on_handled(seq: int) -> None:
        handled.setdefault(seq, time.perf_counter())
        if seq in waiting:
            waiting[seq].set()
        if len(handled) >= target:
            done.set()

    runtime = Runtime([bench_domain(on_handled)], factory, app=f"b{uuid.uuid4().hex[:8]}")
    async with runtime.running():
        context = runtime.context("bench")
        # Warm up: clients, connections and the first long polls.
        target = 10**9
        for seq in range(-5, 0):
            waiting[seq] = anyio.Event()
            await runtime.publish(Ping(seq=seq), source="bench")
            await waiting[seq].wait()

        latencies = []
        for seq in range(latency_n):
            waiting[seq] = anyio.Event()
            start = time.perf_counter()
            await runtime.publish(Ping(seq=seq), source="bench")
            await waiting[seq].wait()
            latencies.append((handled[seq] - start) * 1000)

        handled.clear()
        target = burst_n
        start = time.perf_counter()
        for first in range(0, burst_n, 10):
            context.outbox.clear()
            for seq in range(first, min(first + 10, burst_n)):
                context.publish(Ping(seq=seq))
            await runtime.publisher.publish(list(context.outbox))
        await done.wait()
        elapsed = time.perf_counter() - start
    latencies.sort()
    return Result(
        name,
        statistics.median(latencies),
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        burst_n / elapsed,
        burst_n,
    )


async def main(latency_n: int, burst_n: int) -> None:
    with LocalEndpoint() as url:
        settings = AwsSettings(endpoint_url=url)
        contenders: list[tuple[str, TransportFactory, int]] = [
            ("in-memory", in_memory(seed=1), 20),
            ("SNS+SQS (moto)", sns_sqs(settings, handler_for=sqs_batch_handler), 1),
            ("EventBridge+SQS (moto)", eventbridge(settings, handler_for=sqs_batch_handler), 1),
        ]
        results = []
        for name, factory, scale in contenders:
            results.append(await measure(name, factory, latency_n, burst_n * scale))
    print(f"latency: {latency_n} sequential events; throughput: bursts of batches of 10")
    print()
    print("| transport | p50 ms | p99 ms | burst events | events/s |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.transport} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.burst:,} "
            f"| {r.events_per_s:,.0f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=200, help="sequential events timed")
    parser.add_argument("--throughput", type=int, default=2000, help="events in the burst")
    args = parser.parse_args()
    anyio.run(main, args.latency, args.throughput)
