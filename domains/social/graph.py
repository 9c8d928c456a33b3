"""The social graph behind a small `Graph` port: who follows and who blocks whom.

`TableGraph`, the default, keeps one adjacency item per edge in the domain's table,
`USER#<from>` / `FOLLOWS#<to>` (or `BLOCKS#<to>`): a user's outgoing edges are one query of
their partition, the incoming ones one query of the `inverted` index, which swaps `PK` and
`SK` (docs/decisions/0024-social-graph-and-feed.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bus import Attr, Key
from bus.storage import GlobalIndex, KeyAttribute, Projection, Table

#: The inverted index: every item found by its sort key; sorted by its partition key.
INVERTED = GlobalIndex(
    "inverted", KeyAttribute("SK"), KeyAttribute("PK"), projection=Projection.KEYS_ONLY
)


class Edge(StrEnum):
    """The kinds of edge, each the prefix of its items' sort key."""

    FOLLOWS = "FOLLOWS"
    BLOCKS = "BLOCKS"


@dataclass(frozen=True)
class Ids:
    """One page of user ids; `cursor` is None on the last page."""

    ids: list[str]
    cursor: str | None = None


class Writes(Protocol):
    """Where edge changes are staged: a unit of work, so they commit with their events."""

    def put(self, item: Mapping[str, Any], *, condition: Any = None) -> None: ...

    def delete(self, key: Mapping[str, Any], *, condition: Any = None) -> None: ...


class Graph(Protocol):
    """Directed edges between users. Reads of outgoing edges are consistent; incoming ones
    may lag a write by the time an index takes to catch up."""

    async def has(self, edge: Edge, source: str, target: str) -> bool:
        """Whether `source` has an `edge` to `target` (follows or blocks them)."""
        ...

    async def outgoing(
        self, edge: Edge, source: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Ids:
        """Whom `source` follows (or blocks), a page at a time."""
        ...

    async def incoming(
        self, edge: Edge, target: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Ids:
        """Who follows (or blocks) `target`, a page at a time."""
        ...

    def add(self, writes: Writes, edge: Edge, source: str, target: str, *, at: str) -> None:
        """Stage a new edge; the commit fails if it exists already."""
        ...

    def remove(self, writes: Writes, edge: Edge, source: str, target: str) -> None:
        """Stage removing an edge; the commit fails if it does not exist."""
        ...


def user_key(user_id: str) -> str:
    return f"USER#{user_id}"


def edge_key(edge: Edge, source: str, target: str) -> dict[str, str]:
    return {"PK": user_key(source), "SK": f"{edge}#{target}"}


class TableGraph:
    """The graph as adjacency items in one table with the `inverted` index."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def has(self, edge: Edge, source: str, target: str) -> bool:
        return await self.table.get(edge_key(edge, source, target), consistent=True) is not None

    async def outgoing(
        self, edge: Edge, source: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Ids:
        page = await self.table.query(
            Key("PK").eq(user_key(source)) & Key("SK").begins_with(f"{edge}#"),
            limit=limit,
            cursor=cursor,
            consistent=True,
        )
        return Ids([item["SK"].partition("#")[2] for item in page.items], page.cursor)

    async def incoming(
        self, edge: Edge, target: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Ids:
        page = await self.table.query(
            Key("SK").eq(f"{edge}#{target}") & Key("PK").begins_with("USER#"),
            index=INVERTED.name,
            limit=limit,
            cursor=cursor,
        )
        return Ids([item["PK"].partition("#")[2] for item in page.items], page.cursor)

    def add(self, writes: Writes, edge: Edge, source: str, target: str, *, at: str) -> None:
        writes.put({**edge_key(edge, source, target), "at": at}, condition=Attr("PK").not_exists())

    def remove(self, writes: Writes, edge: Edge, source: str, target: str) -> None:
        writes.delete(edge_key(edge, source, target), condition=Attr("PK").exists())


Pages = Callable[[str | None], Awaitable[Ids]]


def outgoing_pages(graph: Graph, edge: Edge, source: str, *, size: int = 100) -> Pages:
    """`pages(cursor)` giving `source`'s outgoing edges of a kind, `size` a page."""

    async def page(cursor: str | None) -> Ids:
        return await graph.outgoing(edge, source, limit=size, cursor=cursor)

    return page


def incoming_pages(graph: Graph, edge: Edge, target: str, *, size: int = 100) -> Pages:
    """`pages(cursor)` giving `target`'s incoming edges of a kind, `size` a page."""

    async def page(cursor: str | None) -> Ids:
        return await graph.incoming(edge, target, limit=size, cursor=cursor)

    return page


async def every_id(pages: Pages, *, most: int | None = None) -> AsyncIterator[str]:
    """The ids of every page `pages(cursor)` gives, or of the first `most` of them."""
    cursor: str | None = None
    given = 0
    while True:
        page = await pages(cursor)
        for user_id in page.ids:
            if most is not None and given >= most:
                return
            given += 1
            yield user_id
        cursor = page.cursor
        if cursor is None:
            return


async def id_set(pages: Pages, *, most: int | None = None) -> set[str]:
    return {user_id async for user_id in every_id(pages, most=most)}
