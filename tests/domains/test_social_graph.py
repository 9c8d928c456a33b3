"""The `Graph` port's table implementation, the feed it serves and the suggestions it
answers, on the in-memory table and on DynamoDB (moto server): one behaviour on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bus import TransactionCanceled
from bus.storage import Table
from bus.storage.unit_of_work import UnitOfWork
from domains.social.feed import HomeFeed, celebrity_key, decode_cursor, feed_key, post_key
from domains.social.graph import INVERTED, Edge, TableGraph, id_set, incoming_pages
from domains.social.suggestions import Suggestion, people_you_may_know
from tests.tables import table_maker

NOW = 1_700_000_000.0
AT = datetime.fromtimestamp(NOW, UTC)
POSTED = AT.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(params=["memory", "dynamodb"])
async def table(request: pytest.FixtureRequest) -> AsyncIterator[Table]:
    async with table_maker(request, lambda: NOW, indexes=(INVERTED,)) as make:
        yield await make()


async def edges(graph: TableGraph, *pairs: tuple[str, str], edge: Edge = Edge.FOLLOWS) -> None:
    async with UnitOfWork(graph.table, now=lambda: NOW) as uow:
        for source, target in pairs:
            graph.add(uow, edge, source, target, at="2026-01-01T00:00:00.000Z")


async def test_edges_are_found_from_both_ends(table: Table) -> None:
    graph = TableGraph(table)
    await edges(graph, ("ada", "bob"), ("cy", "bob"), ("ada", "cy"))
    await edges(graph, ("bob", "ada"), edge=Edge.BLOCKS)
    assert await graph.has(Edge.FOLLOWS, "ada", "bob")
    assert not await graph.has(Edge.FOLLOWS, "bob", "ada")
    assert await graph.has(Edge.BLOCKS, "bob", "ada")
    assert (await graph.outgoing(Edge.FOLLOWS, "ada")).ids == ["bob", "cy"]
    assert (await graph.incoming(Edge.FOLLOWS, "bob")).ids == ["ada", "cy"]
    assert (await graph.incoming(Edge.BLOCKS, "ada")).ids == ["bob"]
    assert (await graph.outgoing(Edge.BLOCKS, "ada")).ids == []


async def test_adding_an_edge_twice_or_removing_a_missing_one_cancels(table: Table) -> None:
    graph = TableGraph(table)
    await edges(graph, ("ada", "bob"))
    with pytest.raises(TransactionCanceled):
        await edges(graph, ("ada", "bob"))
    async with UnitOfWork(table, now=lambda: NOW) as uow:
        graph.remove(uow, Edge.FOLLOWS, "ada", "bob")
    with pytest.raises(TransactionCanceled):
        async with UnitOfWork(table, now=lambda: NOW) as uow:
            graph.remove(uow, Edge.FOLLOWS, "ada", "bob")
    assert (await graph.incoming(Edge.FOLLOWS, "bob")).ids == []


async def test_incoming_edges_page_with_a_cursor(table: Table) -> None:
    graph = TableGraph(table)
    fans = [f"fan{n:02}" for n in range(25)]
    await edges(graph, *((fan, "star") for fan in fans))
    first = await graph.incoming(Edge.FOLLOWS, "star", limit=10)
    assert len(first.ids) == 10 and first.cursor is not None
    assert await id_set(incoming_pages(graph, Edge.FOLLOWS, "star", size=10)) == set(fans)
    assert len(await id_set(incoming_pages(graph, Edge.FOLLOWS, "star", size=10), most=12)) == 12


async def test_people_you_may_know_ranks_by_mutual_and_excludes(table: Table) -> None:
    graph = TableGraph(table)
    await edges(
        graph,
        ("bob", "ada"), ("cy", "ada"),  # Ada's followers
        ("di", "bob"), ("di", "cy"), ("ed", "cy"), ("fay", "cy"), ("gus", "bob"),
        ("ada", "gus"),  # already followed by Ada
    )  # fmt: skip
    await edges(graph, ("fay", "ada"), edge=Edge.BLOCKS)
    found = await people_you_may_know(graph, "ada", limit=10)
    assert found == [Suggestion("di", 2), Suggestion("ed", 1)]


async def posts(table: Table, *posts: tuple[str, str], readers: tuple[str, ...] = ()) -> None:
    """Posts `(author, post_id)`, each copied into the feeds of `readers`."""
    for author, post_id in posts:
        item = {"post_id": post_id, "user_id": author, "text": post_id, "created_at": POSTED}
        await table.put({**post_key(author, post_id), **item})
        for reader in readers:
            await table.put({**feed_key(reader, post_id), **item})


def post_id(n: int) -> str:
    return f"0190a000-0000-7000-8000-{n:012x}"


async def test_the_home_feed_merges_fanned_out_celebrity_and_own_posts(table: Table) -> None:
    graph = TableGraph(table)
    await edges(graph, ("ada", "bob"), ("ada", "star"), ("ada", "gone"))
    await table.put({**celebrity_key("star"), "since": "t"})
    await posts(table, (("bob", post_id(1))), (("bob", post_id(4))), readers=("ada",))
    await posts(table, ("gone", post_id(6)), readers=("ada",))
    await posts(table, ("star", post_id(2)), ("star", post_id(5)))
    await posts(table, ("ada", post_id(3)))
    async with UnitOfWork(table, now=lambda: NOW) as uow:
        graph.remove(uow, Edge.FOLLOWS, "ada", "gone")  # unfollowed: their copy is hidden
    feed = HomeFeed(table, graph)
    first = await feed.page("ada", limit=3, now=AT)
    assert [p["post_id"] for p in first.posts] == [post_id(5), post_id(4), post_id(3)]
    assert first.cursor is not None and decode_cursor(first.cursor) == post_id(3)
    second = await feed.page("ada", limit=3, now=AT, cursor=first.cursor)
    assert [p["post_id"] for p in second.posts] == [post_id(2), post_id(1)]
    assert second.cursor is None
