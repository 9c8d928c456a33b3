"""Publish -> handle throughput of the in-memory transport beside a raw loop and two peers.

Every contender publishes N five-field pydantic events to 1 and to 10 subscribers and waits
until every handler call is done; events/s counts published events. TCTF and the raw loop
encode each event to JSON and decode+validate it per subscriber, as a real transport would.

    .venv/bin/python benchmarks/bus_throughput.py [--events 20000] [--repeat 5]

`--latency RATE` measures instead the publish -> handled latency of the in-memory transport
at a steady RATE events/s (one subscriber): p50 and p99 over `--events` events, after a
second of warm-up. `--logs` turns the per-delivery JSON log line on (to a discarding
stream) for either mode, to measure what observability costs. `--cpu` times throughput by
the process's CPU time instead of wall time (for a machine others are using at the same
time); `--peer-events 0` leaves the peers out.
"""

# The peers (FastStream, bubus) come with the `bench` extra: without it they are `Any` to mypy.
# mypy: disable-error-code="misc,untyped-decorator,unused-ignore"

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import logging
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import BaseModel

from bus import Context, Domain, DomainSettings, Event
from bus.clock import SystemClock
from bus.memory import in_memory
from bus.runtime import Runtime


class OrderPlaced(Event):
    type = "ORDER_PLACED"
    order_id: str
    customer: str
    total: int
    currency: str
    express: bool


class PlainOrder(BaseModel):
    order_id: str
    customer: str
    total: int
    currency: str
    express: bool


def sample(n: int) -> dict[str, object]:
    return {
        "order_id": f"o{n}",
        "customer": "c42",
        "total": n,
        "currency": "EUR",
        "express": n % 2 == 0,
    }


#: What a throughput run is timed by: wall time, or with `--cpu` the process's CPU time, which
#: other processes sharing the machine do not inflate (the contenders each run on one thread).
timer: Callable[[], float] = time.perf_counter


def order(n: int) -> OrderPlaced:
    return OrderPlaced(**sample(n))  # type: ignore[arg-type]


def subscribers(
    fanout: int, count: int, finished: asyncio.Event, *, metric: str | None = None
) -> list[Domain]:
    """`fanout` domains, each handling every `OrderPlaced` (counting `metric` if given);
    `finished` is set once all `count` events reached every one of them."""
    done = 0
    domains = []
    for n in range(fanout):
        domain = Domain(f"sub{n}", DomainSettings())

        @domain.on(OrderPlaced)
        async def handle(event: OrderPlaced, ctx: Context) -> None:
            nonlocal done
            if metric is not None:
                ctx.metrics.add(metric)
            done += 1
            if done == count * fanout:
                finished.set()

        domains.append(domain)
    return domains


# -- contenders: each returns the seconds taken to publish `count` events and drain them ----


async def raw_queue(count: int, fanout: int) -> float:
    """asyncio.Queue per subscriber, a consumer task each, JSON encode once, decode per copy."""
    done = 0
    finished = asyncio.Event()
    queues: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in range(fanout)]

    async def handler(event: PlainOrder) -> None:
        nonlocal done
        done += 1
        if done == count * fanout:
            finished.set()

    async def consume(queue: asyncio.Queue[bytes]) -> None:
        while True:
            body = await queue.get()
            await handler(PlainOrder.model_validate_json(body))

    tasks = [asyncio.create_task(consume(q)) for q in queues]
    events = [PlainOrder(**sample(n)) for n in range(count)]
    start = timer()
    for event in events:
        body = event.__pydantic_serializer__.to_json(event)
        for queue in queues:
            queue.put_nowait(body)
    await finished.wait()
    elapsed = timer() - start
    for task in tasks:
        task.cancel()
    return elapsed


async def tctf(count: int, fanout: int) -> float:
    """The in-memory transport with the default middleware (correlation, idempotency, retry)."""
    finished = asyncio.Event()
    runtime = Runtime(subscribers(fanout, count, finished), in_memory(), clock=SystemClock())
    events = [order(n) for n in range(count)]
    async with runtime.running():
        start = timer()
        for event in events:
            await runtime.publish(event, source="orders")
        await finished.wait()
        return timer() - start


async def tctf_latency(count: int, rate: float, warmup: int) -> list[float]:
    """Seconds from each publish call to its handler's return, publishing `rate` events/s.

    Events go out on a fixed schedule (each at start + n / rate, a late one at once), so
    the bus runs at a steady rate, not as fast as it can; the first `warmup` are left out.
    """
    sent: dict[int, float] = {}
    latencies: list[float] = []
    finished = asyncio.Event()
    total = warmup + count
    domain = Domain("sub0", DomainSettings())

    @domain.on(OrderPlaced)
    async def handle(event: OrderPlaced, ctx: Context) -> None:
        latencies.append(time.perf_counter() - sent[event.total])
        if len(latencies) == total:
            finished.set()

    runtime = Runtime([domain], in_memory(), clock=SystemClock())
    events = [order(n) for n in range(total)]
    async with runtime.running():
        start = time.perf_counter()
        for n, event in enumerate(events):
            due = start + n / rate
            if (ahead := due - time.perf_counter()) > 0:
                await asyncio.sleep(ahead)
            sent[n] = time.perf_counter()
            await runtime.publish(event, source="orders")
        await finished.wait()
    return latencies[warmup:]


async def faststream(count: int, fanout: int) -> float:
    """FastStream's in-memory Redis test broker (what its users test with)."""
    from faststream.redis import RedisBroker, TestRedisBroker

    broker = RedisBroker()
    done = 0
    for n in range(fanout):

        @broker.subscriber("orders", title=f"sub{n}")
        async def handle(event: PlainOrder) -> None:
            nonlocal done
            done += 1

    events = [PlainOrder(**sample(n)) for n in range(count)]
    async with TestRedisBroker(broker) as test_broker:
        start = timer()
        for event in events:
            await test_broker.publish(event, channel="orders")
        elapsed = timer() - start
    assert done == count * fanout, (done, count * fanout)
    return elapsed


async def bubus(count: int, fanout: int) -> float:
    """bubus EventBus, handlers awaited by the bus, waiting until it is idle."""
    from bubus import BaseEvent, EventBus

    class BubusOrder(BaseEvent[None]):
        order_id: str
        customer: str
        total: int
        currency: str
        express: bool

    bus = EventBus(max_history_size=100)  # dispatching without awaiting stalls past ~1,000
    done = 0
    for n in range(fanout):

        async def handle(event: BubusOrder) -> None:
            nonlocal done
            done += 1

        handle.__name__ = f"handle{n}"
        bus.on(BubusOrder, handle)
    events = [BubusOrder(**sample(n)) for n in range(count)]  # type: ignore[arg-type]
    start = timer()
    for event in events:
        await bus.dispatch(event)
    await bus.wait_until_idle()
    elapsed = timer() - start
    await bus.stop()
    assert done == count * fanout, (done, count * fanout)
    return elapsed


Contender = Callable[[int, int], Coroutine[Any, Any, float]]


def measure(contender: Contender, count: int, fanout: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        gc.collect()
        rates.append(count / asyncio.run(contender(count, fanout)))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--peer-events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=float, metavar="RATE", help="events/s, steady")
    parser.add_argument("--logs", action="store_true", help="per-delivery log lines on")
    parser.add_argument("--cpu", action="store_true", help="time by process CPU time")
    args = parser.parse_args()
    if args.cpu:
        global timer
        timer = time.process_time
    if args.logs:
        from bus.observability import JsonFormatter

        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(JsonFormatter())
        discard = logging.getLogger("tctf")
        discard.handlers[:] = [handler]
        discard.setLevel(logging.INFO)
        discard.propagate = False
        handler.stream = _Discard()
    if args.latency:
        latency(args.events, args.latency, args.repeat, args.logs)
        return
    contenders: list[tuple[str, Contender, int]] = [
        ("raw asyncio.Queue + direct call", raw_queue, args.events),
        ("tctf in-memory transport", tctf, args.events),
        ("FastStream TestRedisBroker", faststream, args.peer_events),
        ("bubus EventBus", bubus, args.peer_events),
    ]
    contenders = [c for c in contenders if c[2] > 0]
    results: dict[str, dict[int, float]] = {}
    for name, contender, count in contenders:
        results[name] = {f: measure(contender, count, f, args.repeat) for f in (1, 10)}
    ours = results["tctf in-memory transport"]
    clock = "process CPU time" if args.cpu else "wall time"
    print(
        f"events/s ({clock}), median of {args.repeat}; JSON encode + decode/validate per delivery\n"
    )
    print("| contender | 1 subscriber | 10 subscribers | tctf ÷ it (1) | tctf ÷ it (10) |")
    print("|---|---:|---:|---:|---:|")
    for name, rates in results.items():
        print(
            f"| {name} | {rates[1]:,.0f} | {rates[10]:,.0f} | "
            f"{ours[1] / rates[1]:.2f}x | {ours[10] / rates[10]:.2f}x |"
        )


class _Discard(io.StringIO):
    """A stream that formats reach and that keeps nothing (the log lines are costed, not
    read)."""

    def write(self, text: str) -> int:
        return len(text)


def latency(count: int, rate: float, repeat: int, logs: bool) -> None:
    runs = []
    for _ in range(repeat):
        gc.collect()
        observed = sorted(asyncio.run(tctf_latency(count, rate, warmup=int(rate))))
        runs.append((observed[len(observed) // 2], observed[int(len(observed) * 0.99)]))
    p50 = statistics.median(run[0] for run in runs) * 1e6
    p99 = statistics.median(run[1] for run in runs) * 1e6
    print(
        f"publish -> handled at {rate:,.0f} events/s, {count:,} events, median of {repeat} "
        f"runs, logs {'on' if logs else 'off'}\n"
    )
    print("| transport | p50 us | p99 us |")
    print("|---|---:|---:|")
    print(f"| tctf in-memory | {p50:,.0f} | {p99:,.0f} |")


if __name__ == "__main__":
    main()
