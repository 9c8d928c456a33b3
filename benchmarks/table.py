"""Storage port throughput: InMemoryTable beside DynamoTable on a moto server, in one run.

Operations: put (one item), get (by key), query (25 items of a 200-item partition, with
begins_with on the sort key), and a unit-of-work commit (one item + one outbox event, i.e.
a head read and a 3-operation transaction). The moto rows measure moto on loopback HTTP
(plus aioboto3), not DynamoDB: they show what a local end-to-end run costs, nothing more.

    .venv/bin/python benchmarks/table.py [--ops 5000] [--moto-ops 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from bus.storage import InMemoryTable, Key, Table, TableSpec, UnitOfWork, outbox_index


def spec(name: str) -> TableSpec:
    return TableSpec(name, indexes=(outbox_index(),), ttl_attribute="expires_at")


def item(n: int) -> dict[str, object]:
    return {
        "PK": f"user#{n % 50}",
        "SK": f"order#{n:08d}",
        "status": "paid",
        "total": n * 3,
        "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    }


async def rate(operation: Callable[[int], Awaitable[object]], ops: int, repeat: int) -> float:
    """Best operations per second over `repeat` runs of `ops` sequential calls."""
    best = 0.0
    for run in range(repeat):
        started = time.perf_counter()
        for n in range(ops):
            await operation(run * ops + n)
        best = max(best, ops / (time.perf_counter() - started))
    return best


async def measure(table: Table, ops: int, repeat: int) -> dict[str, float]:
    for start in range(0, 200, 25):
        for n in range(start, start + 25):
            await table.put({"PK": "feed", "SK": f"post#{n:04d}", "n": n})

    async def put(n: int) -> None:
        await table.put(item(n))

    async def get(n: int) -> None:
        await table.get({"PK": f"user#{n % 50}", "SK": f"order#{n % ops:08d}"})

    async def query(n: int) -> None:
        await table.query(Key("PK").eq("feed") & Key("SK").begins_with("post#"), limit=25)

    async def commit(n: int) -> None:
        async with UnitOfWork(table) as uow:
            uow.put(item(n))
            uow.publish(b'{"type":"ORDER_PAID"}' * 20, ordering_key=f"order#{n}", event_id=str(n))

    return {
        "put": await rate(put, ops, repeat),
        "get": await rate(get, ops, repeat),
        "query (25 items)": await rate(query, ops, repeat),
        "unit of work commit": await rate(commit, ops, repeat),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure_moto(ops: int, repeat: int) -> dict[str, float]:
    from moto.server import ThreadedMotoServer

    from adapters.aws.dynamodb import DynamoTable

    for name, value in [("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")]:
        os.environ.setdefault(name, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        async with DynamoTable(
            spec("bench"), endpoint_url=endpoint, region_name="us-east-1"
        ) as table:
            await table.provision()
            return await measure(table, ops, repeat)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000, help="operations per in-memory run")
    parser.add_argument("--moto-ops", type=int, default=100, help="operations per moto run")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args()

    memory = asyncio.run(measure(InMemoryTable(spec("bench")), args.ops, args.repeat))
    moto = asyncio.run(measure_moto(args.moto_ops, args.repeat))

    print("| operation | InMemoryTable ops/s | us/op | DynamoTable on moto server ops/s | us/op |")
    print("|---|---:|---:|---:|---:|")
    for name in memory:
        print(
            f"| {name} | {memory[name]:,.0f} | {1e6 / memory[name]:.1f} "
            f"| {moto[name]:,.0f} | {1e6 / moto[name]:.0f} |"
        )


if __name__ == "__main__":
    main()
