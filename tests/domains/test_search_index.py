"""`TableSearchIndex` on both tables, InMemoryTable and DynamoTable (moto): the same scores,
prefixes, versions and clean-up of postings on each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from bus.clock import ManualClock
from bus.storage import Key, Table, UnitOfWork, outbox_index
from domains.search.errors import IndexConflict
from domains.search.index import (
    Document,
    TableSearchIndex,
    Writes,
    document_key,
    posting_key,
    stats_key,
)
from domains.search.text import parse_query
from tests.tables import table_maker

V1, V2, V3 = (
    "2026-01-01T00:00:00.000Z#a",
    "2026-01-01T00:00:01.000Z#b",
    "2026-01-02T00:00:00.000Z#c",
)


@pytest.fixture(params=["memory", "dynamodb"])
async def table(request: pytest.FixtureRequest) -> AsyncIterator[Table]:
    defaults: dict[str, Any] = {"indexes": (outbox_index(),), "ttl_attribute": "expires_at"}
    async with table_maker(request, ManualClock().now, **defaults) as make:
        yield await make()


def post(post_id: str, text: str) -> Document:
    return Document("post", post_id, text, {"user_id": "u", "text": text})


async def ranked(index: TableSearchIndex, q: str, **kw: Any) -> list[tuple[str, float]]:
    page = await index.search(parse_query(q), **kw)
    return [(hit.id, round(hit.score, 6)) for hit in page.hits]


async def postings(table: Table, term: str) -> list[str]:
    """`kind#id` of each posting of `term`."""
    page = await table.query(Key("PK").eq(f"TERM#{term}"), consistent=True)
    return [
        f"{kind}#{document_id}"
        for kind, _, document_id in (str(item["SK"]).split("#", 2) for item in page.items)
    ]


async def test_bm25_scores_are_the_hand_computed_ones(table: Table) -> None:
    index = TableSearchIndex(table)
    await index.index(post("p1", "apple banana cherry"), V1)
    await index.index(post("p2", "apple apple"), V1)
    await index.index(post("p3", "banana kiwi mango grape"), V1)
    # idf(apple) = ln(1 + 1.5 / 2.5); p1 weighs 1.0 of it, p2 4.4 / 2.9 (docstring of
    # tests/domains/test_search.py); banana adds its own for p1
    assert await ranked(index, "apple ") == [("p2", 0.713109), ("p1", 0.470004)]
    assert [hit for hit, _ in await ranked(index, "apple banana ")] == ["p1", "p2", "p3"]


async def test_a_prefix_expands_to_the_words_it_begins(table: Table) -> None:
    index = TableSearchIndex(table)
    await index.index(post("p1", "Ponies gallop"), V1)
    await index.index(post("p2", "Pond life"), V1)
    await index.index(post("p3", "Apples"), V1)
    assert sorted(h for h, _ in await ranked(index, "pon")) == ["p1", "p2"]
    assert [h for h, _ in await ranked(index, "ponie")] == ["p1"]
    assert [h for h, _ in await ranked(index, "gallop p")] == ["p1", "p2"]


async def test_an_update_replaces_the_postings_and_the_stats(table: Table) -> None:
    index = TableSearchIndex(table)
    assert await index.index(post("p1", "red green"), V1)
    assert await index.index(post("p1", "green blue blue"), V2)
    assert await postings(table, "red") == []
    assert await postings(table, "blue") == ["post#p1"]
    stats = await table.get(stats_key("post"), consistent=True)
    assert stats is not None and (stats["documents"], stats["length"]) == (1, 3)
    assert await ranked(index, "red ") == []


async def test_an_older_or_repeated_version_changes_nothing(table: Table) -> None:
    index = TableSearchIndex(table)
    assert await index.index(post("p1", "new words"), V2)
    assert not await index.index(post("p1", "old words"), V1)
    assert not await index.index(post("p1", "new words"), V2)
    assert await postings(table, "old") == []
    assert [h for h, _ in await ranked(index, "new ")] == ["p1"]


async def test_a_removal_leaves_a_tombstone_a_late_creation_cannot_pass(table: Table) -> None:
    index = TableSearchIndex(table)
    assert await index.remove("post", "p1", V2)
    assert not await index.index(post("p1", "ghost"), V1)
    assert await postings(table, "ghost") == []
    item = await table.get(document_key("post", "p1"), consistent=True)
    assert item is not None and item["deleted"] is True
    stats = await table.get(stats_key("post"), consistent=True)
    assert stats is None


async def test_a_removal_takes_the_postings_and_the_stats(table: Table) -> None:
    index = TableSearchIndex(table)
    await index.index(post("p1", "sea shells"), V1)
    await index.index(post("p2", "sea salt"), V1)
    assert await index.remove("post", "p1", V2)
    assert await postings(table, "shell") == []
    assert await ranked(index, "sea ") == [("p2", 0.287682)]  # ln(1 + 0.5 / 1.5)
    stats = await table.get(stats_key("post"), consistent=True)
    assert stats is not None and (stats["documents"], stats["length"]) == (1, 2)


async def test_postings_left_by_an_unfinished_write_are_never_shown(table: Table) -> None:
    """A delivery that wrote its postings and died before its commit: its postings carry a
    version the document's item does not, so they match nothing until a retry commits."""
    index = TableSearchIndex(table)
    await index.index(post("p1", "calm"), V1)
    posting = posting_key("storm", "post", "p1", 1, 1, 1)
    await table.put({**posting, "tf": 1, "length": 1, "version": V2})
    assert await ranked(index, "storm ") == []
    assert [h for h, _ in await ranked(index, "calm ")] == ["p1"]


async def test_a_document_of_more_words_than_a_transaction_holds(table: Table) -> None:
    index = TableSearchIndex(table)
    text = " ".join(f"word{n}" for n in range(150))
    await index.index(post("p1", text), V1)
    assert [h for h, _ in await ranked(index, "word149 ")] == ["p1"]
    await index.index(post("p1", "short"), V3)
    assert await ranked(index, "word7 ") == []
    assert await postings(table, "word42") == []


async def test_kinds_are_searched_apart_or_together(table: Table) -> None:
    index = TableSearchIndex(table)
    await index.index(post("p1", "Grace under pressure"), V1)
    await index.index(Document("profile", "u1", "Grace Hopper", {"user_id": "u1"}), V1)
    assert [h for h, _ in await ranked(index, "grace ", kinds=("profile",))] == ["u1"]
    assert [h for h, _ in await ranked(index, "grace ", kinds=("post",))] == ["p1"]
    assert sorted(h for h, _ in await ranked(index, "grace ")) == ["p1", "u1"]


async def test_pages_cover_the_ranking_once(table: Table) -> None:
    index = TableSearchIndex(table)
    for n in range(7):
        await index.index(post(f"p{n}", "tea " * (n + 1)), V1)
    first = await index.search(parse_query("tea "), limit=4)
    assert first.next_offset == 4
    second = await index.search(parse_query("tea "), offset=4, limit=4)
    assert second.next_offset is None
    ids = [h.id for h in first.hits + second.hits]
    assert ids == [f"p{n}" for n in range(6, -1, -1)]


def committing_after(
    table: Table, rival: Document, version: str
) -> Callable[[], AbstractAsyncContextManager[Writes]]:
    """A commit that lets `rival` be indexed (and committed) first: two deliveries racing."""

    @asynccontextmanager
    async def commit() -> AsyncIterator[Writes]:
        await TableSearchIndex(table).index(rival, version)
        async with UnitOfWork(table) as uow:
            yield uow

    return commit


async def test_a_newer_version_committed_first_wins_the_race(table: Table) -> None:
    await TableSearchIndex(table).index(post("p1", "one"), V1)
    racing = TableSearchIndex(table, committing_after(table, post("p1", "three"), V3))
    assert not await racing.index(post("p1", "two"), V2)
    assert await postings(table, "two") == []  # taken back
    assert [h for h, _ in await ranked(TableSearchIndex(table), "three ")] == ["p1"]
    stats = await table.get(stats_key("post"), consistent=True)
    assert stats is not None and (stats["documents"], stats["length"]) == (1, 1)


async def test_an_older_version_committed_first_makes_the_newer_retry(table: Table) -> None:
    await TableSearchIndex(table).index(post("p1", "one"), V1)
    racing = TableSearchIndex(table, committing_after(table, post("p1", "two"), V2))
    with pytest.raises(IndexConflict):
        await racing.index(post("p1", "three"), V3)
    assert await TableSearchIndex(table).index(post("p1", "three"), V3)  # the retry
    assert [h for h, _ in await ranked(TableSearchIndex(table), "three ")] == ["p1"]
    assert await ranked(TableSearchIndex(table), "two ") == []
    stats = await table.get(stats_key("post"), consistent=True)
    assert stats is not None and (stats["documents"], stats["length"]) == (1, 1)


class CountingReads:
    """The table, counting the postings each query of a term's partition returns."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.postings_read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    async def query(self, condition: Any, **options: Any) -> Any:
        page = await self._table.query(condition, **options)
        self.postings_read += sum(1 for i in page.items if str(i["PK"]).startswith("TERM#"))
        return page


async def test_a_search_reads_a_bounded_number_of_a_terms_postings_the_best_first(
    table: Table,
) -> None:
    """A word in every document costs `postings_per_term` reads, not one per document, and
    the postings read are those scoring best: the top hits are the same as reading all."""
    whole = TableSearchIndex(table)
    for n in range(24):
        # "storm" n % 4 + 1 times, among n % 5 other words: counts and lengths vary
        words = ["storm"] * (n % 4 + 1) + [f"filler{m}" for m in range(n % 5)]
        await whole.index(post(f"p{n:02d}", " ".join(words)), V1)
    counting = CountingReads(table)
    bounded = TableSearchIndex(counting, postings_per_term=8)  # type: ignore[arg-type]

    best = await bounded.search(parse_query("storm "), limit=5)

    assert counting.postings_read <= 8
    everything = await whole.search(parse_query("storm "), limit=5)
    assert [h.id for h in best.hits] == [h.id for h in everything.hits]
    scores = [h.score for h in best.hits]
    assert scores == sorted(scores, reverse=True)
