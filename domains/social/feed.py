"""Posts and the home feed: where each is kept and how a page of a feed is read.

A post lives in its author's partition, `POSTS#<author>` / `POST#<post_id>`. An ordinary
author's post is also copied into each follower's `FEED#<reader>` (fan-out on write), the
copy expiring `FEED_HORIZON` after the post by the table's TTL; an
author with many followers is listed in `CELEBRITIES` instead, and readers merge their
posts in when they read (merged on read). Post ids are time-ordered, so newest first is
descending sort-key order in every partition.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bus import Key
from bus.storage import Table
from domains.social.errors import InvalidCursor
from domains.social.graph import Edge, Graph, Ids, every_id, id_set, outgoing_pages

CELEBRITIES = "CELEBRITIES"
#: How far back a home feed reaches: a post's copies in feeds expire this many seconds after
#: it was posted (the table's TTL attribute), and a feed page shows nothing older from any
#: source, so every reader's feed ends at the same point. Older posts stay on their author's
#: page (`GET /social/users/{id}/posts`).
FEED_HORIZON = 30 * 24 * 3600
_POST_ID = re.compile(r"^[0-9a-f-]{36}$")


def post_key(author: str, post_id: str) -> dict[str, str]:
    return {"PK": f"POSTS#{author}", "SK": f"POST#{post_id}"}


def feed_key(reader: str, post_id: str) -> dict[str, str]:
    return {"PK": f"FEED#{reader}", "SK": f"POST#{post_id}"}


def feed_copy(reader: str, post: Mapping[str, Any], *, ttl_attribute: str) -> dict[str, Any]:
    """`post`'s copy in `reader`'s feed, expiring `FEED_HORIZON` after it was posted."""
    posted = datetime.fromisoformat(str(post["created_at"])).timestamp()
    fields = {k: post[k] for k in ("post_id", "user_id", "text", "created_at")}
    return {
        **fields,
        **feed_key(reader, str(post["post_id"])),
        ttl_attribute: int(posted) + FEED_HORIZON,
    }


def within_horizon(post: Mapping[str, Any], now: datetime) -> bool:
    """Whether a post is recent enough for a home feed (posted `FEED_HORIZON` ago or less)."""
    posted = datetime.fromisoformat(str(post["created_at"]))
    return posted >= now - timedelta(seconds=FEED_HORIZON)


def celebrity_key(user_id: str) -> dict[str, str]:
    return {"PK": CELEBRITIES, "SK": f"USER#{user_id}"}


def encode_cursor(post_id: str) -> str:
    return base64.urlsafe_b64encode(post_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The post id a feed page ended at; `InvalidCursor` for anything a page did not give."""
    try:
        post_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        post_id = ""
    if not _POST_ID.match(post_id):
        raise InvalidCursor("the cursor is not one this feed gave")
    return post_id


@dataclass(frozen=True)
class FeedPage:
    """Posts newest first; `cursor` is None once no page follows."""

    posts: list[dict[str, Any]]
    cursor: str | None


class HomeFeed:
    """Reads a reader's home feed: their fan-out partition, their own posts and the posts of
    the celebrities they follow, merged newest first."""

    def __init__(self, table: Table, graph: Graph) -> None:
        self.table = table
        self.graph = graph

    async def page(
        self, reader: str, *, limit: int, now: datetime, cursor: str | None = None
    ) -> FeedPage:
        """A page of posts within `FEED_HORIZON` of `now`, from every source alike: a copy
        gone by its TTL is never missed next to an older post of another source, and a
        cursor naming a post (or copy) gone since still pages on."""
        before = None if cursor is None else decode_cursor(cursor)
        following = await id_set(outgoing_pages(self.graph, Edge.FOLLOWS, reader))
        merged = {reader} | (await self.celebrities() & following)
        found: dict[str, dict[str, Any]] = {}
        for author in sorted(merged):
            for post in await self._newest(f"POSTS#{author}", limit, before):
                found[post["post_id"]] = post
        for post in await self._fanned_out(reader, following, limit, before):
            found.setdefault(post["post_id"], post)
        recent = [p for p in found.values() if within_horizon(p, now)]
        newest = sorted(recent, key=lambda p: p["post_id"], reverse=True)[:limit]
        more = len(newest) == limit
        return FeedPage(
            [_post(p) for p in newest], encode_cursor(newest[-1]["post_id"]) if more else None
        )

    async def celebrities(self) -> set[str]:
        """Authors whose posts are merged on read rather than fanned out."""

        async def page(cursor: str | None) -> Ids:
            found = await self.table.query(Key("PK").eq(CELEBRITIES), cursor=cursor, limit=1000)
            return Ids([i["SK"].partition("#")[2] for i in found.items], found.cursor)

        return {user_id async for user_id in every_id(page)}

    async def _newest(
        self, partition: str, limit: int, before: str | None, cursor: str | None = None
    ) -> list[dict[str, Any]]:
        page = await self.table.query(
            _newer_than(partition, before), limit=limit, descending=True, cursor=cursor
        )
        return page.items

    async def _fanned_out(
        self, reader: str, following: set[str], limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        """Up to `limit` copies in the reader's feed, skipping authors they no longer follow
        (unfollowed, blocked or deleted since the copy was made)."""
        kept: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(kept) < limit:
            page = await self.table.query(
                _newer_than(f"FEED#{reader}", before),
                limit=limit,
                descending=True,
                cursor=cursor,
            )
            kept += [p for p in page.items if p["user_id"] in following]
            cursor = page.cursor
            if cursor is None:
                break
        return kept[:limit]


def _newer_than(partition: str, before: str | None) -> Any:
    if before is None:
        return Key("PK").eq(partition) & Key("SK").begins_with("POST#")
    return Key("PK").eq(partition) & Key("SK").lt(f"POST#{before}")


def _post(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("post_id", "user_id", "text", "created_at")}
