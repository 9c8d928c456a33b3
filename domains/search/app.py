"""The search domain: posts and profiles indexed from social's and users' facts, and
`GET /search` over them for signed-in users.

A profile is searched by its name alone: e-mail addresses are neither indexed nor shown.
Every fact is applied by its version (its time, then its id), so a duplicate or a fact
overtaken by a newer one changes nothing (domains/search/index.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from pydantic import BaseModel, Field

from bus import ConfigurationError, Context, Domain, Request, Storage
from bus.access import SIGNED_IN
from bus.pagination import PageQuery, page_query
from domains.search.errors import InvalidQuery
from domains.search.index import KINDS, Document, Hit, Kind, SearchIndex, TableSearchIndex
from domains.search.text import parse_query
from domains.social.contracts import PostCreated, PostDeleted
from domains.users.contracts import UserCreated, UserDeleted, UserUpdated

domain = Domain("search", storage=Storage())

#: Longest query accepted, in characters.
MAX_QUERY_LENGTH = 256


def index_of(ctx: Context) -> SearchIndex:
    """The production index: the domain's own table, committed in the handler's unit of work."""
    return TableSearchIndex(ctx.table, ctx.unit_of_work)


def version_of(ctx: Context) -> str:
    """The fact's place in time: its time, then its (time-ordered) id for facts of one
    millisecond."""
    envelope = ctx.envelope
    if envelope is None:
        raise ConfigurationError("a search handler runs for a delivered fact")
    return f"{envelope.time}#{envelope.id}"


@domain.on(PostCreated)
async def index_post(event: PostCreated, ctx: Context) -> None:
    fields = {"user_id": event.user_id, "text": event.text, "created_at": event.created_at}
    document = Document("post", event.post_id, event.text, fields)
    await index_of(ctx).index(document, version_of(ctx))


@domain.on(PostDeleted)
async def remove_post(event: PostDeleted, ctx: Context) -> None:
    await index_of(ctx).remove("post", event.post_id, version_of(ctx))


@domain.on(UserCreated)
async def index_new_profile(event: UserCreated, ctx: Context) -> None:
    await _index_profile(event.user_id, event.name, ctx)


@domain.on(UserUpdated)
async def reindex_profile(event: UserUpdated, ctx: Context) -> None:
    await _index_profile(event.user_id, event.name, ctx)


@domain.on(UserDeleted)
async def remove_profile(event: UserDeleted, ctx: Context) -> None:
    await index_of(ctx).remove("profile", event.user_id, version_of(ctx))


async def _index_profile(user_id: str, name: str, ctx: Context) -> None:
    document = Document("profile", user_id, name, {"user_id": user_id, "name": name})
    await index_of(ctx).index(document, version_of(ctx))


class SearchQuery(PageQuery):
    q: str = Field(
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description="words to find; the last one, with no space after it, matches as a prefix",
    )
    type: Kind | None = Field(None, description="only posts or only profiles")


class SearchHit(BaseModel):
    type: Kind
    id: str
    score: float
    user_id: str
    #: A post's text and time.
    text: str | None = None
    created_at: str | None = None
    #: A profile's name.
    name: str | None = None


class SearchResults(BaseModel):
    items: list[SearchHit]
    cursor: str | None


@domain.get("/search", response=SearchResults, access=SIGNED_IN, query=SearchQuery)
async def search(request: Request[None], ctx: Context) -> SearchResults:
    """Posts and profiles matching any word of `q`, best first (BM25); `limit` a page."""
    params = page_query(request)
    if not isinstance(params, SearchQuery):
        raise ConfigurationError("GET /search declares query=SearchQuery")
    query = parse_query(params.q)
    kinds: tuple[Kind, ...] = KINDS if params.type is None else (params.type,)
    fingerprint = _fingerprint(params.q, params.type)
    offset = 0 if params.cursor is None else _offset(params.cursor, fingerprint)
    page = await TableSearchIndex(ctx.table).search(
        query, kinds=kinds, offset=offset, limit=params.limit
    )
    cursor = None if page.next_offset is None else _cursor(page.next_offset, fingerprint)
    return SearchResults(items=[_hit(h) for h in page.hits], cursor=cursor)


def _hit(hit: Hit) -> SearchHit:
    return SearchHit(type=hit.kind, id=hit.id, score=round(hit.score, 6), **hit.fields)


def _fingerprint(q: str, kind: str | None) -> str:
    """Ties a cursor to its search, so it cannot page through another."""
    return hashlib.sha256(f"{kind}\x00{q}".encode()).hexdigest()[:16]


def _cursor(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode().rstrip("=")


def _offset(cursor: str, fingerprint: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    offset, _, mark = text.partition(":")
    if not offset.isdigit() or mark != fingerprint:
        raise InvalidQuery("the cursor is not one this search gave")
    return int(offset)
