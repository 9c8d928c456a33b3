"""Home feed reads and people-you-may-know on a generated social graph: the social domain's
`TableGraph`, `HomeFeed` and `people_you_may_know` over `InMemoryTable` and over
`DynamoTable` on a moto server started here, the same items in both.

The graph, seeded: 10,000 users, each following 1 to 15 others (uniform), whom they follow
drawn with Zipf weights (exponent 1), so followers follow a power law; a fifth of the users
post two posts each. Items are laid out as the domain writes them: follow edges, posts,
copies fanned out to followers' feeds for authors under the merge-on-read threshold (1,000
followers) and the `CELEBRITIES` list for those above it. The moto table is loaded with
BatchWriteItem (setup, not measured); reads go through the port as the routes do.

    .venv/bin/python benchmarks/social_graph.py [--users 10000] [--feeds 300] [--suggestions 100]
        [--moto-feeds 10] [--moto-suggestions 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import socket
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bus.ids import IdGenerator
from bus.storage import InMemoryTable, Table, TableSpec
from domains.social.app import DEFAULT_MERGE_ON_READ_FOLLOWERS
from domains.social.feed import HomeFeed, celebrity_key, feed_key, post_key
from domains.social.graph import INVERTED, Edge, TableGraph, edge_key
from domains.social.suggestions import people_you_may_know

FEED_PAGE = 20
SUGGESTIONS = 10
#: When every post of the generated graph was made, and the moment its feeds are read.
POSTED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Graph:
    users: list[str]
    follows: dict[str, set[str]]
    followers: dict[str, set[str]]
    items: list[dict[str, Any]]

    @property
    def edges(self) -> int:
        return sum(len(f) for f in self.follows.values())


def generate(users: int, seed: int, threshold: int) -> Graph:
    rng = random.Random(seed)
    ids = [f"u{n:05}" for n in range(users)]
    weights = [1 / (rank + 1) for rank in range(users)]
    follows: dict[str, set[str]] = defaultdict(set)
    followers: dict[str, set[str]] = defaultdict(set)
    for user in ids:
        wanted = rng.randint(1, 15)
        while len(follows[user]) < wanted:
            target = rng.choices(ids, weights)[0]
            if target != user:
                follows[user].add(target)
                followers[target].add(user)
    items: list[dict[str, Any]] = []
    at = POSTED_AT.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for user, targets in follows.items():
        items += [{**edge_key(Edge.FOLLOWS, user, t), "at": at} for t in targets]
    celebrities = {u for u in ids if len(followers[u]) >= threshold}
    items += [{**celebrity_key(u), "since": at} for u in sorted(celebrities)]
    post_ids = IdGenerator(seed)
    for author in rng.sample(ids, users // 5) * 2:
        post = {"post_id": post_ids(), "user_id": author, "text": "x" * 80, "created_at": at}
        items.append({**post_key(author, post["post_id"]), **post})
        if author not in celebrities:
            items += [{**feed_key(r, post["post_id"]), **post} for r in followers[author]]
    return Graph(ids, follows, followers, items)


def spec() -> TableSpec:
    return TableSpec(name=f"social-bench-{uuid.uuid4().hex[:8]}", indexes=(INVERTED,))


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    took = []
    for call in calls:
        start = time.perf_counter()
        await call()
        took.append((time.perf_counter() - start) * 1000)
    return took


@dataclass
class Row:
    store: str
    read: str
    samples: int
    p50_ms: float
    p99_ms: float


def row(store: str, read: str, took: list[float]) -> Row:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Row(store, read, len(took), statistics.median(ordered), p99)


async def measure(
    store: str, table: Table, graph: Graph, feeds: int, suggestions: int, seed: int
) -> list[Row]:
    rng = random.Random(seed + 1)
    social = TableGraph(table)
    feed = HomeFeed(table, social)
    readers = rng.choices(graph.users, k=feeds)
    askers = rng.choices(graph.users, k=suggestions)
    read = partial(feed.page, limit=FEED_PAGE, now=POSTED_AT)
    await read(readers[0])  # warm up clients and connections
    feed_ms = await timed([partial(read, r) for r in readers])
    suggest_ms = await timed(
        [partial(people_you_may_know, social, a, limit=SUGGESTIONS) for a in askers]
    )
    return [
        row(store, f"home feed, first page of {FEED_PAGE}", feed_ms),
        row(store, f"people you may know, top {SUGGESTIONS}", suggest_ms),
    ]


async def in_memory(graph: Graph, feeds: int, suggestions: int, seed: int) -> list[Row]:
    table = InMemoryTable(spec())
    for item in graph.items:
        await table.put(item)
    return await measure("InMemoryTable", table, graph, feeds, suggestions, seed)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_moto(endpoint: str, table_name: str, items: list[dict[str, Any]]) -> None:
    import boto3

    client = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    with client.Table(table_name).batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)


async def on_moto(graph: Graph, feeds: int, suggestions: int, seed: int) -> list[Row]:
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
        async with DynamoTable(spec(), endpoint_url=endpoint, region_name="us-east-1") as table:
            await table.provision()
            await asyncio.to_thread(load_moto, endpoint, table.spec.name, graph.items)
            return await measure("DynamoTable on moto", table, graph, feeds, suggestions, seed)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--feeds", type=int, default=300, help="feed reads in memory")
    parser.add_argument("--suggestions", type=int, default=100, help="suggestions in memory")
    parser.add_argument("--moto-feeds", type=int, default=10, help="feed reads on moto")
    parser.add_argument("--moto-suggestions", type=int, default=5, help="suggestions on moto")
    args = parser.parse_args()

    graph = generate(args.users, args.seed, DEFAULT_MERGE_ON_READ_FOLLOWERS)
    degrees = sorted((len(f) for f in graph.followers.values()), reverse=True)
    celebrities = sum(1 for d in degrees if d >= DEFAULT_MERGE_ON_READ_FOLLOWERS)
    print(
        f"{len(graph.users):,} users, {graph.edges:,} follows, {len(graph.items):,} items; "
        f"most followed {degrees[:3]}, median of the followed {statistics.median(degrees):.0f}; "
        f"{celebrities} above {DEFAULT_MERGE_ON_READ_FOLLOWERS:,} followers (merged on read)",
        flush=True,
    )
    print("| store | read | samples | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|", flush=True)
    show(asyncio.run(in_memory(graph, args.feeds, args.suggestions, args.seed)))
    show(asyncio.run(on_moto(graph, args.moto_feeds, args.moto_suggestions, args.seed)))


def show(rows: list[Row]) -> None:
    for r in rows:
        print(f"| {r.store} | {r.read} | {r.samples} | {r.p50_ms:.2f} | {r.p99_ms:.2f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
