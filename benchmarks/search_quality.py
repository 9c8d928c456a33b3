"""Search ranking quality and latency: the search domain's index beside tantivy's BM25.

The same 85 documents and 26 hand-labelled queries (benchmarks/data/, SOURCES.md there) go
to our `TableSearchIndex` on InMemoryTable and on DynamoTable (a moto server), and to an
in-memory tantivy index analysing text as ours does (simple tokenizer, long words dropped,
lower case, ASCII folding, English Snowball stems; BM25 k1 1.2, b 0.75). Printed: nDCG@10
against the labels, the overlap of each top 10 with tantivy's, and query latency p50/p99.
Queries are complete words (a space after the last), as tantivy reads them; one more row
runs ours as typed, the last word a prefix. The moto row measures moto on loopback HTTP
(plus aioboto3), not DynamoDB.

    .venv/bin/python benchmarks/search_quality.py [--repeat 200] [--moto-repeat 5] [--per-query]
        [--cap N ...]

The capped rows read at most N postings of each term and kind, the highest-impact first,
as the index does at `MAX_POSTINGS_PER_TERM`: what the bound costs in quality.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import tantivy

from bus.storage import InMemoryTable, Table, TableSpec, outbox_index
from domains.search.index import MAX_POSTINGS_PER_TERM, Document, Kind, TableSearchIndex
from domains.search.text import parse_query, terms

DATA = Path(__file__).parent / "data"
TOP = 10


@dataclass(frozen=True)
class Labelled:
    query: str
    relevant: dict[str, int]


@dataclass
class Run:
    name: str
    rankings: dict[str, list[str]]
    latencies_ns: list[int]


def load() -> tuple[list[dict[str, str]], list[Labelled]]:
    lines = (DATA / "search_corpus.jsonl").read_text().splitlines()
    corpus = [json.loads(line) for line in lines if line.strip()]
    queries = [
        Labelled(q["query"], q["relevant"])
        for q in json.loads((DATA / "search_queries.json").read_text())
    ]
    return corpus, queries


def ndcg(ranking: list[str], relevant: dict[str, int], k: int = TOP) -> float:
    """Normalised discounted cumulative gain at k, gains 2^grade - 1."""

    def dcg(grades: list[int]) -> float:
        return sum((2.0**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k]))

    ideal = dcg(sorted(relevant.values(), reverse=True))
    return dcg([relevant.get(d, 0) for d in ranking]) / ideal if ideal else 0.0


def overlap(ours: list[str], theirs: list[str]) -> float:
    """Shared documents of two top-k lists, over the longer list's length (1.0 when both
    are empty)."""
    a, b = set(ours[:TOP]), set(theirs[:TOP])
    return len(a & b) / max(len(a), len(b)) if a or b else 1.0


def percentile(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1e6


# -- tantivy -------------------------------------------------------------------------------


def tantivy_run(corpus: list[dict[str, str]], queries: list[Labelled], repeat: int) -> Run:
    analyzer = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("body", tokenizer_name="en_fold")
    index = tantivy.Index(builder.build())
    index.register_tokenizer("en_fold", analyzer)
    writer = index.writer()
    for doc in corpus:
        writer.add_document(tantivy.Document(id=doc["id"], body=doc["text"]))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    def search(text: str) -> list[str]:
        hits = searcher.search(index.parse_query(text, ["body"]), TOP).hits
        return [searcher.doc(address)["id"][0] for _, address in hits]

    return timed("tantivy 0.27 (BM25)", queries, repeat, lambda q: _done(search(q)))


async def _done(value: list[str]) -> list[str]:
    return value


# -- ours ----------------------------------------------------------------------------------


def spec(name: str) -> TableSpec:
    return TableSpec(name, indexes=(outbox_index(),), ttl_attribute="expires_at")


async def filled(table: Table, corpus: list[dict[str, str]]) -> TableSearchIndex:
    index = TableSearchIndex(table)
    for doc in corpus:
        kind: Kind = "profile" if doc["kind"] == "profile" else "post"
        await index.index(Document(kind, doc["id"], doc["text"]), "2026-01-01T00:00:00.000Z#1")
    return index


async def ours_run(
    name: str, index: TableSearchIndex, queries: list[Labelled], repeat: int, typed: bool = False
) -> Run:
    async def search(text: str) -> list[str]:
        page = await index.search(parse_query(text if typed else text + " "), limit=TOP)
        return [hit.id for hit in page.hits]

    return await timed_async(name, queries, repeat, search)


def timed(
    name: str, queries: list[Labelled], repeat: int, search: Callable[[str], Awaitable[list[str]]]
) -> Run:
    return asyncio.run(timed_async(name, queries, repeat, search))


async def timed_async(
    name: str, queries: list[Labelled], repeat: int, search: Callable[[str], Awaitable[list[str]]]
) -> Run:
    rankings: dict[str, list[str]] = {}
    latencies: list[int] = []
    for labelled in queries:
        rankings[labelled.query] = await search(labelled.query)
        for _ in range(repeat):
            started = time.perf_counter_ns()
            await search(labelled.query)
            latencies.append(time.perf_counter_ns() - started)
    return Run(name, rankings, latencies)


async def memory_runs(
    corpus: list[dict[str, str]], queries: list[Labelled], repeat: int, caps: list[int]
) -> list[Run]:
    table = InMemoryTable(spec("search-bench"))
    index = await filled(table, corpus)
    runs = [
        await ours_run("ours, InMemoryTable", index, queries, repeat),
        await ours_run(
            "ours, InMemoryTable, last word a prefix", index, queries, repeat, typed=True
        ),
    ]
    for cap in caps:
        capped = TableSearchIndex(table, postings_per_term=cap)
        name = f"ours, InMemoryTable, at most {cap} postings per term"
        runs.append(await ours_run(name, capped, queries, repeat))
    return runs


def most_postings(corpus: list[dict[str, str]]) -> int:
    """The most documents of one kind holding one term: where a cap starts to bind."""
    held: Counter[tuple[str, str]] = Counter()
    for doc in corpus:
        held.update((doc["kind"], t) for t in set(terms(doc["text"])))
    return max(held.values())


async def moto_run(corpus: list[dict[str, str]], queries: list[Labelled], repeat: int) -> Run:
    from moto.server import ThreadedMotoServer

    from adapters.aws.dynamodb import DynamoTable

    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "x")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        async with DynamoTable(
            spec("search-bench"), endpoint_url=endpoint, region_name="us-east-1"
        ) as table:
            await table.provision()
            index = await filled(table, corpus)
            return await ours_run("ours, DynamoTable on moto", index, queries, repeat)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="timed runs of each query")
    parser.add_argument("--moto-repeat", type=int, default=5, help="timed runs on moto")
    parser.add_argument("--per-query", action="store_true", help="nDCG@10 of every query")
    parser.add_argument(
        "--cap",
        type=int,
        action="append",
        help="also rank reading at most this many postings per term (repeatable; "
        "default 10 and 20: the corpus is too small for the index's own cap to bind)",
    )
    args = parser.parse_args()
    corpus, queries = load()

    peer = tantivy_run(corpus, queries, args.repeat)
    caps = args.cap or [10, 20]
    runs = [peer, *asyncio.run(memory_runs(corpus, queries, args.repeat, caps))]
    runs.append(asyncio.run(moto_run(corpus, queries, args.moto_repeat)))

    print(
        f"{len(corpus)} documents, {len(queries)} labelled queries; the most documents of "
        f"one kind holding one term: {most_postings(corpus)} (the index reads at most "
        f"{MAX_POSTINGS_PER_TERM})\n"
    )
    print("| engine | nDCG@10 | top-10 overlap with tantivy | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for run in runs:
        quality = [ndcg(run.rankings[q.query], q.relevant) for q in queries]
        shared = [overlap(run.rankings[q.query], peer.rankings[q.query]) for q in queries]
        print(
            f"| {run.name} | {sum(quality) / len(quality):.3f} | {sum(shared) / len(shared):.3f} "
            f"| {percentile(run.latencies_ns, 50):.3f} | {percentile(run.latencies_ns, 99):.3f} |"
        )
    if args.per_query:
        print("\n| query | " + " | ".join(run.name for run in runs) + " |")
        print("|---|" + "---:|" * len(runs))
        for q in queries:
            cells = " | ".join(f"{ndcg(run.rankings[q.query], q.relevant):.3f}" for run in runs)
            print(f"| {q.query} | {cells} |")


if __name__ == "__main__":
    main()
