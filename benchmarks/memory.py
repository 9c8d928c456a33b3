"""Resident memory of the in-memory runtime over a million events: flat once TTLs expire.

Two domains consume every event: `ledger` keeps state (a unit of work per event: one item
of a bounded set, its idempotency record, an outbox event) and `mailer` keeps none (its
idempotency records live in its own table). A `ManualClock` moves on as events flow so that
one idempotency TTL passes every `--window` events: idempotency records, outbox heads and
expired items must leave memory as they would leave DynamoDB. RSS is read from /proc after
each checkpoint; the last line compares RSS at the end with RSS at the first checkpoint.

    .venv/bin/python benchmarks/memory.py [--events 1000000] [--window 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time

from bus import Context, Domain, Event, Storage
from bus.clock import ManualClock
from bus.dispatch import flush
from bus.memory import in_memory
from bus.runtime import Runtime

BATCH = 1_000


class Paid(Event):
    type = "PAID"
    invoice: str
    customer: str
    amount: int


class Receipted(Event):
    type = "RECEIPTED"
    invoice: str


def domains() -> list[Domain]:
    ledger = Domain("ledger", storage=Storage())
    mailer = Domain("mailer")

    @ledger.on(Paid)
    async def book(event: Paid, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.put({"PK": f"CUSTOMER#{event.customer}", "SK": "BALANCE", "last": event.amount})
            uow.publish(Receipted(invoice=event.invoice), subject=event.customer)

    @mailer.on(Paid)
    async def notify(event: Paid, ctx: Context) -> None:
        ctx.metrics.add("ReceiptsSent")

    return [ledger, mailer]


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run(events: int, window: int, checkpoints: list[int]) -> list[tuple[int, float, float]]:
    clock = ManualClock()
    runtime = Runtime(domains(), in_memory(seed=1), clock=clock, relay_interval=None)
    ttl = max(d.settings.idempotency_ttl for d in runtime.domains)
    step = ttl / (window / BATCH)  # one TTL passes every `window` events
    rows = []
    start = time.perf_counter()
    async with runtime.running():
        for sent in range(BATCH, events + 1, BATCH):
            context = runtime.context("billing")
            for n in range(sent - BATCH, sent):
                context.publish(Paid(invoice=f"i{n}", customer=f"c{n % 1000}", amount=n))
            await flush(runtime.publisher, context.outbox)
            await runtime.transport.settle()
            await runtime.relay()
            await runtime.transport.settle()
            clock.advance(step)
            if sent in checkpoints:
                gc.collect()
                rows.append((sent, rss_mib(), time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=100_000, help="events per idempotency TTL")
    args = parser.parse_args()
    checkpoints = sorted(
        {args.events // 10, *range(args.events // 5, args.events + 1, args.events // 5)}
    )
    rows = asyncio.run(run(args.events, args.window, checkpoints))
    print(f"{args.events:,} events, one idempotency TTL every {args.window:,} events\n")
    print("| events | RSS (MiB) | vs first | elapsed (s) |")
    print("|---:|---:|---:|---:|")
    first = rows[0][1]
    for sent, rss, elapsed in rows:
        print(f"| {sent:,} | {rss:.1f} | {rss / first:.2f}x | {elapsed:.0f} |")
    growth = rows[-1][1] / first - 1
    print(f"\nRSS after {rows[-1][0]:,} events is {growth:+.1%} of RSS after {rows[0][0]:,}")


if __name__ == "__main__":
    main()
