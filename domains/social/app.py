"""The social domain: follows and blocks, posts, the home feed and people you may know.

Items, all in social's table: `USER#<id>` holds the user's projection (`PROFILE`, from the
users domain's facts) and their outgoing edges (`FOLLOWS#<id>`, `BLOCKS#<id>`, graph.py);
`POSTS#<author>` their posts, `FEED#<reader>` the copies fanned out to a reader, and
`CELEBRITIES` the authors read by merging (feed.py). The `inverted` index finds an edge's
source and a post's copies. Routes answer to the signed-in caller about themselves.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bus import (
    Attr,
    ConfigurationError,
    Conflict,
    Context,
    Domain,
    Key,
    NotFound,
    Rejected,
    Request,
    Storage,
    TransactionCanceled,
)
from bus.access import SIGNED_IN
from bus.pagination import PageQuery, page_query, read_page
from bus.storage.errors import InvalidRequest
from domains.social.contracts import (
    ErasePostCopies,
    EraseUser,
    FanOutPost,
    PostCreated,
    PostDeleted,
    UserFollowed,
    UserUnfollowed,
)
from domains.social.feed import (
    HomeFeed,
    celebrity_key,
    feed_copy,
    post_key,
    within_horizon,
)
from domains.social.graph import INVERTED, Edge, Ids, TableGraph, edge_key
from domains.social.suggestions import people_you_may_know
from domains.users.contracts import UserCreated, UserDeleted, UserUpdated, has_control_characters

domain = Domain(
    "social",
    storage=Storage(indexes=(INVERTED,)),
    sends=[FanOutPost, ErasePostCopies, EraseUser],
)

#: The environment variable holding the follower count from which an author's posts are
#: merged on read instead of fanned out to every follower.
MERGE_ON_READ_VARIABLE = "SOCIAL_MERGE_ON_READ_FOLLOWERS"
DEFAULT_MERGE_ON_READ_FOLLOWERS = 1000
#: Longest post, in characters.
MAX_POST_LENGTH = 1000
#: An author's newest posts copied into a new follower's feed.
BACKFILL_POSTS = 20
#: Feeds a post is copied into per task: with the handled record and the next task, a
#: transaction stays under DynamoDB's 100 operations.
FAN_OUT_PAGE = 90
#: Items an erasure task removes at once, for the same reason; a third of it for a user's
#: own follows (two operations each: the edge and the followee's count) and a third for
#: their blocks.
ERASE_PAGE = 90
#: Posts an erasure task deletes at once: four operations each (the post, its fact, the
#: task removing its copies and that task's ordering head).
ERASE_POSTS = 20
#: The table's TTL attribute, which feed copies carry.
_TTL = Storage().ttl_attribute
_NOT_DELETED = Attr("status").not_exists() | Attr("status").ne("deleted")


def merge_on_read_followers() -> int:
    """The follower count from which an author's posts are merged on read."""
    value = os.environ.get(MERGE_ON_READ_VARIABLE, str(DEFAULT_MERGE_ON_READ_FOLLOWERS))
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"{MERGE_ON_READ_VARIABLE} is a whole number from 1, got {value!r}"
        )
    return int(value)


def _post_text(value: str) -> str:
    if has_control_characters(value.replace("\n", "").replace("\t", "")):
        raise ValueError("a post holds no control characters but line breaks and tabs")
    if not value.strip():
        raise ValueError("a post is not empty or only spaces")
    return value


class NewPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[
        str, Field(min_length=1, max_length=MAX_POST_LENGTH), AfterValidator(_post_text)
    ]


class Post(BaseModel):
    post_id: str
    user_id: str
    text: str
    created_at: str


class Posts(BaseModel):
    items: list[Post]
    cursor: str | None


class Relation(BaseModel):
    """A follow or a block of `user_id`, made at `since`."""

    user_id: str
    since: str


class UserIds(BaseModel):
    items: list[str]
    cursor: str | None


class SuggestionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(10, ge=1, le=50, description="suggestions at most")


class Suggestion(BaseModel):
    user_id: str
    #: How many of the caller's followers this person follows.
    mutual: int


class Suggestions(BaseModel):
    items: list[Suggestion]


def _profile_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "PROFILE"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _caller(request: Request[Any]) -> str:
    assert request.principal is not None  # SIGNED_IN routes only
    return request.principal.subject


async def _active_profile(user_id: str, ctx: Context) -> dict[str, Any]:
    profile = await ctx.table.get(_profile_key(user_id), consistent=True)
    if profile is None or profile.get("status") == "deleted":
        raise NotFound(f"no user {user_id}")
    return profile


async def _check_not_deleted(user_id: str, ctx: Context) -> None:
    """A caller whose account is deleted (an access token outlives it) changes nothing."""
    profile = await ctx.table.get(_profile_key(user_id), consistent=True)
    if profile is not None and profile.get("status") == "deleted":
        raise NotFound(f"no user {user_id}")


# -- the projection of users ------------------------------------------------------------


@domain.on(UserCreated)
async def project_user_created(event: UserCreated, ctx: Context) -> None:
    """Know the user, so others may follow them; a profile updated or deleted first wins."""
    try:
        async with ctx.unit_of_work() as uow:
            uow.put(
                {
                    **_profile_key(event.user_id),
                    "user_id": event.user_id,
                    "name": event.name,
                    "status": "active",
                    "followers": 0,
                },
                condition=Attr("PK").not_exists(),
            )
    except TransactionCanceled:
        return


@domain.on(UserUpdated)
async def project_user_updated(event: UserUpdated, ctx: Context) -> None:
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _profile_key(event.user_id),
                set={"user_id": event.user_id, "name": event.name, "status": "active"},
                condition=_NOT_DELETED,
            )
    except TransactionCanceled:
        return  # deleted: stays deleted


@domain.on(UserDeleted)
async def forget_user(event: UserDeleted, ctx: Context) -> None:
    """Mark the user deleted at once (no one may follow them any more), then erase their
    graph, posts and feed in batches (`EraseUser`)."""
    try:
        async with ctx.unit_of_work() as uow:
            uow.put(
                {
                    **_profile_key(event.user_id),
                    "user_id": event.user_id,
                    "status": "deleted",
                    "deleted_at": _iso(ctx.now()),
                },
                condition=_NOT_DELETED,
            )
            uow.delete(celebrity_key(event.user_id))
            uow.send(EraseUser(user_id=event.user_id))
    except TransactionCanceled:
        return  # deleted already; its erasure is under way


# -- follows and blocks -----------------------------------------------------------------


@domain.put("/social/following/{user_id}", response=Relation, access=SIGNED_IN)
async def follow(request: Request[None], ctx: Context) -> Relation:
    """Follow a user; following them again changes nothing. A user who blocks the caller
    answers 404, as an unknown one does, so a block cannot be probed."""
    caller, target = _caller(request), request.path_params["user_id"]
    if caller == target:
        raise Rejected("you cannot follow yourself")
    graph = TableGraph(ctx.table)
    await _check_not_deleted(caller, ctx)
    profile = await _active_profile(target, ctx)
    if await graph.has(Edge.BLOCKS, target, caller):
        raise NotFound(f"no user {target}")
    existing = await ctx.table.get(edge_key(Edge.FOLLOWS, caller, target), consistent=True)
    if existing is not None:
        return Relation(user_id=target, since=existing["at"])
    since = _iso(ctx.now())
    celebrity = await _is_celebrity(target, ctx)
    try:
        async with ctx.unit_of_work() as uow:
            graph.add(uow, Edge.FOLLOWS, caller, target, at=since)
            uow.check(edge_key(Edge.BLOCKS, target, caller), Attr("PK").not_exists())
            uow.update(_profile_key(target), add={"followers": 1}, condition=_NOT_DELETED)
            if not celebrity:
                if int(profile.get("followers", 0)) + 1 >= merge_on_read_followers():
                    uow.put({**celebrity_key(target), "since": since})
                else:
                    await _backfill(uow, ctx, caller, target)
            uow.publish(UserFollowed(follower_id=caller, followee_id=target), subject=caller)
    except TransactionCanceled as error:
        existing = await ctx.table.get(edge_key(Edge.FOLLOWS, caller, target), consistent=True)
        if existing is not None:
            return Relation(user_id=target, since=existing["at"])
        raise Conflict(f"{target} changed meanwhile; try again") from error
    return Relation(user_id=target, since=since)


async def _is_celebrity(user_id: str, ctx: Context) -> bool:
    return await ctx.table.get(celebrity_key(user_id), consistent=True) is not None


async def _backfill(uow: Any, ctx: Context, reader: str, author: str) -> None:
    """Copy the author's newest posts into a new follower's feed."""
    page = await ctx.table.query(
        Key("PK").eq(f"POSTS#{author}") & Key("SK").begins_with("POST#"),
        limit=BACKFILL_POSTS,
        descending=True,
        consistent=True,
    )
    for post in page.items:
        if within_horizon(post, ctx.now()):
            uow.put(feed_copy(reader, post, ttl_attribute=_TTL))


@domain.delete("/social/following/{user_id}", access=SIGNED_IN)
async def unfollow(request: Request[None], ctx: Context) -> None:
    """Stop following a user (404 if the caller does not follow them); their posts leave
    the caller's feed at once."""
    caller, target = _caller(request), request.path_params["user_id"]
    graph = TableGraph(ctx.table)
    if not await graph.has(Edge.FOLLOWS, caller, target):
        raise NotFound(f"you do not follow {target}")
    try:
        async with ctx.unit_of_work() as uow:
            _stage_unfollow(uow, graph, caller, target)
    except TransactionCanceled as error:
        raise NotFound(f"you do not follow {target}") from error


def _stage_unfollow(uow: Any, graph: TableGraph, follower: str, followee: str) -> None:
    graph.remove(uow, Edge.FOLLOWS, follower, followee)
    uow.update(_profile_key(followee), add={"followers": -1})
    uow.publish(UserUnfollowed(follower_id=follower, followee_id=followee), subject=follower)


@domain.get("/social/following", response=UserIds, access=SIGNED_IN, query=PageQuery)
async def list_following(request: Request[None], ctx: Context) -> UserIds:
    """Whom the caller follows, `limit` a page."""
    of = page_query(request)
    graph = TableGraph(ctx.table)
    return await _ids(graph.outgoing(Edge.FOLLOWS, _caller(request), **_cursor(of)))


@domain.get("/social/followers", response=UserIds, access=SIGNED_IN, query=PageQuery)
async def list_followers(request: Request[None], ctx: Context) -> UserIds:
    """Who follows the caller, `limit` a page."""
    of = page_query(request)
    graph = TableGraph(ctx.table)
    return await _ids(graph.incoming(Edge.FOLLOWS, _caller(request), **_cursor(of)))


def _cursor(of: PageQuery) -> dict[str, Any]:
    return {"limit": of.limit, "cursor": of.cursor}


async def _ids(reading: Awaitable[Ids]) -> UserIds:
    try:
        page = await reading
    except InvalidRequest as error:
        raise Rejected("the cursor is not one this list gave") from error
    return UserIds(items=page.ids, cursor=page.cursor)


@domain.put("/social/blocks/{user_id}", response=Relation, access=SIGNED_IN)
async def block(request: Request[None], ctx: Context) -> Relation:
    """Block a user: follows either way end, they cannot follow the caller and neither is
    suggested to the other. Blocking again changes nothing."""
    caller, target = _caller(request), request.path_params["user_id"]
    if caller == target:
        raise Rejected("you cannot block yourself")
    graph = TableGraph(ctx.table)
    await _active_profile(target, ctx)
    existing = await ctx.table.get(edge_key(Edge.BLOCKS, caller, target), consistent=True)
    if existing is not None:
        return Relation(user_id=target, since=existing["at"])
    since = _iso(ctx.now())
    try:
        async with ctx.unit_of_work() as uow:
            graph.add(uow, Edge.BLOCKS, caller, target, at=since)
            for follower, followee in ((caller, target), (target, caller)):
                if await graph.has(Edge.FOLLOWS, follower, followee):
                    _stage_unfollow(uow, graph, follower, followee)
    except TransactionCanceled as error:
        raise Conflict("the follows between you changed meanwhile; try again") from error
    return Relation(user_id=target, since=since)


@domain.delete("/social/blocks/{user_id}", access=SIGNED_IN)
async def unblock(request: Request[None], ctx: Context) -> None:
    caller, target = _caller(request), request.path_params["user_id"]
    try:
        async with ctx.unit_of_work() as uow:
            TableGraph(ctx.table).remove(uow, Edge.BLOCKS, caller, target)
    except TransactionCanceled as error:
        raise NotFound(f"you do not block {target}") from error


@domain.get("/social/suggestions", response=Suggestions, access=SIGNED_IN, query=SuggestionQuery)
async def suggestions(request: Request[None], ctx: Context) -> Suggestions:
    """People you may know: followers of the caller's followers, most mutual first."""
    params = request.params
    assert isinstance(params, SuggestionQuery)
    found = await people_you_may_know(TableGraph(ctx.table), _caller(request), limit=params.limit)
    return Suggestions(items=[Suggestion(user_id=s.user_id, mutual=s.mutual) for s in found])


# -- posts and the feed -----------------------------------------------------------------


@domain.post(
    "/social/posts",
    response=Post,
    status=201,
    location="/social/users/{user_id}/posts/{post_id}",
    access=SIGNED_IN,
)
async def create_post(request: Request[NewPost], ctx: Context) -> Post:
    """Post as the caller; followers see it in their feeds (copied by `FanOutPost`, or
    merged on read for an author with many followers)."""
    caller = _caller(request)
    await _check_not_deleted(caller, ctx)
    post = Post(
        post_id=ctx.new_id(), user_id=caller, text=request.body.text, created_at=_iso(ctx.now())
    )
    celebrity = await _is_celebrity(caller, ctx)
    async with ctx.unit_of_work() as uow:
        uow.put({**post_key(caller, post.post_id), **post.model_dump()})
        uow.publish(PostCreated(**post.model_dump()), subject=caller)
        if not celebrity:
            uow.send(FanOutPost(user_id=caller, post_id=post.post_id))
    return post


@domain.get("/social/users/{user_id}/posts/{post_id}", response=Post, access=SIGNED_IN)
async def get_post(request: Request[None], ctx: Context) -> Post:
    item = await _readable_post(request, ctx)
    return Post.model_validate(item)


async def _readable_post(request: Request[None], ctx: Context) -> dict[str, Any]:
    author, post_id = request.path_params["user_id"], request.path_params["post_id"]
    item = await ctx.table.get(post_key(author, post_id), consistent=True)
    if item is None or await TableGraph(ctx.table).has(Edge.BLOCKS, author, _caller(request)):
        raise NotFound(f"no post {post_id}")
    return item


@domain.delete("/social/users/{user_id}/posts/{post_id}", access=SIGNED_IN)
async def delete_post(request: Request[None], ctx: Context) -> None:
    """Delete one of the caller's posts (404 for anyone else's): POST_DELETED at once, its
    copies in feeds removed by `ErasePostCopies`."""
    author, post_id = request.path_params["user_id"], request.path_params["post_id"]
    if author != _caller(request):
        raise NotFound(f"no post {post_id}")
    try:
        async with ctx.unit_of_work() as uow:
            _stage_post_deletion(uow, author, post_id)
    except TransactionCanceled as error:
        raise NotFound(f"no post {post_id}") from error


def _stage_post_deletion(uow: Any, author: str, post_id: str) -> None:
    uow.delete(post_key(author, post_id), condition=Attr("PK").exists())
    uow.publish(PostDeleted(post_id=post_id, user_id=author), subject=author)
    uow.send(ErasePostCopies(post_id=post_id))


@domain.get("/social/users/{user_id}/posts", response=Posts, access=SIGNED_IN, query=PageQuery)
async def list_posts(request: Request[None], ctx: Context) -> Posts:
    """A user's posts, newest first."""
    author = request.path_params["user_id"]
    await _active_profile(author, ctx)
    if await TableGraph(ctx.table).has(Edge.BLOCKS, author, _caller(request)):
        raise NotFound(f"no user {author}")
    of = page_query(request)
    page = await read_page(
        ctx.table,
        Key("PK").eq(f"POSTS#{author}") & Key("SK").begins_with("POST#"),
        of,
        descending=True,
    )
    return Posts(items=[Post.model_validate(i) for i in page.items], cursor=page.cursor)


@domain.get("/social/feed", response=Posts, access=SIGNED_IN, query=PageQuery)
async def home_feed(request: Request[None], ctx: Context) -> Posts:
    """The caller's home feed, newest first: their own posts and those of whom they follow."""
    of = page_query(request)
    page = await HomeFeed(ctx.table, TableGraph(ctx.table)).page(
        _caller(request), limit=of.limit, now=ctx.now(), cursor=of.cursor
    )
    return Posts(items=[Post.model_validate(p) for p in page.posts], cursor=page.cursor)


@domain.task(FanOutPost)
async def fan_out_post(task: FanOutPost, ctx: Context) -> None:
    """Copy a post into one page of its author's followers' feeds, then send the next page.

    Copies are whole puts, the same item each time: a repeated page writes nothing new. A
    post deleted meanwhile stops the fan-out, so no copy outlives its erasure."""
    post = await ctx.table.get(post_key(task.user_id, task.post_id), consistent=True)
    if post is None:
        return
    followers = await TableGraph(ctx.table).incoming(
        Edge.FOLLOWS, task.user_id, limit=FAN_OUT_PAGE, cursor=task.cursor
    )
    if not followers.ids and followers.cursor is None:
        return
    try:
        async with ctx.unit_of_work() as uow:
            uow.check(post_key(task.user_id, task.post_id), Attr("PK").exists())
            for reader in followers.ids:
                uow.put(feed_copy(reader, post, ttl_attribute=_TTL))
            if followers.cursor is not None:
                uow.send(
                    FanOutPost(user_id=task.user_id, post_id=task.post_id, cursor=followers.cursor)
                )
    except TransactionCanceled:
        return  # the post was deleted meanwhile


@domain.task(ErasePostCopies)
async def erase_post_copies(task: ErasePostCopies, ctx: Context) -> None:
    """Delete one page of a deleted post's copies; another task follows while any remain."""
    page = await ctx.table.query(
        Key("SK").eq(f"POST#{task.post_id}") & Key("PK").begins_with("FEED#"),
        index=INVERTED.name,
        limit=ERASE_PAGE,
    )
    if not page.items:
        return
    async with ctx.unit_of_work() as uow:
        for item in page.items:
            uow.delete({"PK": item["PK"], "SK": item["SK"]})
        uow.send(ErasePostCopies(post_id=task.post_id))


@domain.task(EraseUser)
async def erase_user(task: EraseUser, ctx: Context) -> None:
    """Erase one batch of a deleted user's items, then send the next task; the last finds
    nothing left. Each post deleted is published as POST_DELETED, so every projection of
    posts (search's index) forgets it as if its author had deleted it."""
    for plan in (_outgoing_edges, _incoming_edges, _posts, _feed):
        stage = await plan(ctx, task.user_id)
        if stage is not None:
            break
    else:
        return
    try:
        async with ctx.unit_of_work() as uow:
            stage(uow)
            uow.send(EraseUser(user_id=task.user_id))
    except TransactionCanceled:
        return  # another delivery erased this batch first and sent the next task


Stage = Callable[[Any], None]


async def _outgoing_edges(ctx: Context, user_id: str) -> Stage | None:
    """Whom the user follows (each loses a follower) and blocks."""
    graph = TableGraph(ctx.table)
    follows = await graph.outgoing(Edge.FOLLOWS, user_id, limit=ERASE_PAGE // 3)
    blocks = await graph.outgoing(Edge.BLOCKS, user_id, limit=ERASE_PAGE // 3)
    if not follows.ids and not blocks.ids:
        return None

    def stage(uow: Any) -> None:
        for followee in follows.ids:
            graph.remove(uow, Edge.FOLLOWS, user_id, followee)
            uow.update(_profile_key(followee), add={"followers": -1})
        for blocked in blocks.ids:
            graph.remove(uow, Edge.BLOCKS, user_id, blocked)

    return stage


async def _incoming_edges(ctx: Context, user_id: str) -> Stage | None:
    """Who follows or blocks the user."""
    graph = TableGraph(ctx.table)
    sources = {
        edge: (await graph.incoming(edge, user_id, limit=ERASE_PAGE // 2)).ids for edge in Edge
    }
    if not any(sources.values()):
        return None

    def stage(uow: Any) -> None:
        for edge, ids in sources.items():
            for source in ids:
                uow.delete(edge_key(edge, source, user_id))

    return stage


async def _posts(ctx: Context, user_id: str) -> Stage | None:
    page = await ctx.table.query(
        Key("PK").eq(f"POSTS#{user_id}") & Key("SK").begins_with("POST#"),
        limit=ERASE_POSTS,
        consistent=True,
    )
    if not page.items:
        return None

    def stage(uow: Any) -> None:
        for item in page.items:
            _stage_post_deletion(uow, user_id, item["post_id"])

    return stage


async def _feed(ctx: Context, user_id: str) -> Stage | None:
    page = await ctx.table.query(
        Key("PK").eq(f"FEED#{user_id}") & Key("SK").begins_with("POST#"),
        limit=ERASE_PAGE,
        consistent=True,
    )
    if not page.items:
        return None

    def stage(uow: Any) -> None:
        for item in page.items:
            uow.delete({"PK": item["PK"], "SK": item["SK"]})

    return stage
