"""The user_message domain: messages between users who follow each other, their inbox and
threads, and live delivery to the recipient's WebSocket connections.

Who follows whom is social's to say: this domain keeps a projection of `USER_FOLLOWED` and
`USER_UNFOLLOWED` and lets a message through only while both follow each other, checked in
the same transaction that stores the message. Items, all in user_message's table:

- `FOLLOWS#<follower_id>` / `USER#<followee_id>`: the projection, with the time of the fact
  it holds (an older fact arriving late changes nothing), and its mirror
  `FOLLOWED_BY#<followee_id>` / `USER#<follower_id>`, for erasing a user's side of it;
- `ERASED#<user_id>` / `USER`: a deleted user, whom no late fact brings back;
- `CONVERSATION#<conversation_id>` / `MESSAGE#<message_id>`: the messages, oldest first;
- `INBOX#<user_id>` / `LAST#<last_message_id>`: a user's conversations, newest first, and
  `INBOX#<user_id>` / `CONVERSATION#<conversation_id>`: where that entry stands now;
- `USER#<user_id>` / `CONNECTION#<connection_id>` and `CONNECTION#<connection_id>` / `OWNER`:
  a user's live WebSocket connections, and whose a connection is;
- `DELIVERY#<message_id>` / `CONNECTION#<connection_id>`: a message pushed to a connection.

A conversation's id names its two members, so a caller who is not one is answered 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from bus import (
    Attr,
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
from bus.errors import ConnectionGone, Forbidden
from bus.pagination import PageQuery, page_query, read_page
from bus.websockets import MAX_CONNECTION_SECONDS, Connection
from domains.social.contracts import UserFollowed, UserUnfollowed
from domains.user_message.contracts import DeliverMessage, MessageRead, MessageSent
from domains.users.contracts import UserDeleted

domain = Domain("user_message", storage=Storage(), sends=[DeliverMessage])

#: The longest message, in characters.
MAX_TEXT = 4000
#: How long the record of a message pushed to a connection is kept: longer than a
#: connection lives, so a late redelivery of the push finds it.
DELIVERY_RECORD_TTL = timedelta(seconds=2 * MAX_CONNECTION_SECONDS)
_MEMBER_SEPARATOR = "~"
NOT_MUTUAL = "you can message only users who follow you and whom you follow"


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Message(BaseModel):
    message_id: str
    conversation_id: str
    sender_id: str
    recipient_id: str
    text: str
    sent_at: str


class Messages(BaseModel):
    items: list[Message]
    cursor: str | None


class ConversationSummary(BaseModel):
    conversation_id: str
    with_user_id: str
    last_message_id: str
    last_sender_id: str
    last_sent_at: str
    #: Messages received since the caller last marked the conversation read.
    unread: int


class Inbox(BaseModel):
    items: list[ConversationSummary]
    cursor: str | None


def conversation_id(first: str, second: str) -> str:
    """The one conversation of two users, whichever of them writes first."""
    return _MEMBER_SEPARATOR.join(sorted((first, second)))


def _members(conversation: str) -> tuple[str, str] | None:
    parts = conversation.split(_MEMBER_SEPARATOR)
    if len(parts) != 2 or not all(parts) or parts[0] >= parts[1]:
        return None
    return parts[0], parts[1]


def _follow_key(follower_id: str, followee_id: str) -> dict[str, str]:
    return {"PK": f"FOLLOWS#{follower_id}", "SK": f"USER#{followee_id}"}


def _followed_by_key(followee_id: str, follower_id: str) -> dict[str, str]:
    return {"PK": f"FOLLOWED_BY#{followee_id}", "SK": f"USER#{follower_id}"}


def _erased_key(user_id: str) -> dict[str, str]:
    return {"PK": f"ERASED#{user_id}", "SK": "USER"}


def _message_key(conversation: str, message_id: str) -> dict[str, str]:
    return {"PK": f"CONVERSATION#{conversation}", "SK": f"MESSAGE#{message_id}"}


def _entry_key(user_id: str, last_message_id: str) -> dict[str, str]:
    return {"PK": f"INBOX#{user_id}", "SK": f"LAST#{last_message_id}"}


def _pointer_key(user_id: str, conversation: str) -> dict[str, str]:
    return {"PK": f"INBOX#{user_id}", "SK": f"CONVERSATION#{conversation}"}


def _connection_key(user_id: str, connection_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": f"CONNECTION#{connection_id}"}


def _connection_owner_key(connection_id: str) -> dict[str, str]:
    return {"PK": f"CONNECTION#{connection_id}", "SK": "OWNER"}


def _delivery_key(message_id: str, connection_id: str) -> dict[str, str]:
    return {"PK": f"DELIVERY#{message_id}", "SK": f"CONNECTION#{connection_id}"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- who follows whom -------------------------------------------------------------------


@domain.on(UserFollowed)
async def remember_follow(event: UserFollowed, ctx: Context) -> None:
    await _project_follow(event.follower_id, event.followee_id, following=True, ctx=ctx)


@domain.on(UserUnfollowed)
async def forget_follow(event: UserUnfollowed, ctx: Context) -> None:
    await _project_follow(event.follower_id, event.followee_id, following=False, ctx=ctx)


async def _project_follow(follower: str, followee: str, *, following: bool, ctx: Context) -> None:
    """Keep the newest fact about one follow: facts may arrive out of order, so one older
    than what is held (by its envelope's time, then id) changes nothing, and none about a
    deleted user."""
    assert ctx.envelope is not None
    stamp = f"{ctx.envelope.time}#{ctx.envelope.id}"
    state = {"following": following, "stamp": stamp}
    try:
        async with ctx.unit_of_work() as uow:
            for user in (follower, followee):
                uow.check(_erased_key(user), Attr("PK").not_exists())
            uow.put(
                {**_follow_key(follower, followee), **state},
                condition=Attr("PK").not_exists() | Attr("stamp").lt(stamp),
            )
            uow.put({**_followed_by_key(followee, follower), **state})
    except TransactionCanceled:
        return  # a newer fact is already held, or one of the two was deleted


async def _mutual(first: str, second: str, ctx: Context) -> bool:
    """Whether each of the two users follows the other, as far as social has told us."""
    for follower, followee in ((first, second), (second, first)):
        item = await ctx.table.get(_follow_key(follower, followee), consistent=True)
        if not (item and item["following"]):
            return False
    return True


# -- sending ----------------------------------------------------------------------------


@domain.post(
    "/messages",
    response=Message,
    status=201,
    location="/conversations/{conversation_id}/messages",
    access=SIGNED_IN,
)
async def send_message(request: Request[NewMessage], ctx: Context) -> Message:
    """Send a message to a user who follows the sender and whom the sender follows."""
    assert request.principal is not None
    sender, recipient = request.principal.subject, request.body.recipient_id
    if sender == recipient:
        raise Rejected("a message goes to another user, not to yourself")
    if not await _mutual(sender, recipient, ctx):
        raise Forbidden(NOT_MUTUAL)
    conversation = conversation_id(sender, recipient)
    message = Message(
        message_id=ctx.new_id(),
        conversation_id=conversation,
        sender_id=sender,
        recipient_id=recipient,
        text=request.body.text,
        sent_at=_iso(ctx.now()),
    )
    pointers = {
        user: await ctx.table.get(_pointer_key(user, conversation), consistent=True)
        for user in (sender, recipient)
    }
    try:
        async with ctx.unit_of_work() as uow:
            mutual = Attr("following").eq(True)
            uow.check(_follow_key(sender, recipient), mutual)
            uow.check(_follow_key(recipient, sender), mutual)
            uow.put({**_message_key(conversation, message.message_id), **message.model_dump()})
            for user, pointer in pointers.items():
                _move_inbox_entry(uow, user, message, pointer, received=user == recipient)
            uow.publish(
                MessageSent(
                    message_id=message.message_id,
                    conversation_id=conversation,
                    sender_id=sender,
                    recipient_id=recipient,
                    sent_at=message.sent_at,
                ),
                subject=conversation,
            )
            uow.send(DeliverMessage(conversation_id=conversation, message_id=message.message_id))
    except TransactionCanceled as error:
        if not await _mutual(sender, recipient, ctx):
            raise Forbidden(NOT_MUTUAL) from error
        raise  # the conversation moved meanwhile: a 409, send again
    return message


def _move_inbox_entry(
    uow: Any,
    user: str,
    message: Message,
    pointer: dict[str, Any] | None,
    *,
    received: bool,
) -> None:
    """Put the conversation at the top of `user`'s inbox: its entry is keyed by its last
    message, so the old entry goes and a new one comes, guarded by where it stood."""
    unread = 0
    if pointer is None:
        guard = Attr("PK").not_exists()
    else:
        guard = Attr("last_message_id").eq(pointer["last_message_id"])
        uow.delete(_entry_key(user, pointer["last_message_id"]))
        unread = pointer["unread"]
    if received:
        unread += 1
    other = message.sender_id if received else message.recipient_id
    uow.put(
        {
            **_pointer_key(user, message.conversation_id),
            "last_message_id": message.message_id,
            "unread": unread,
        },
        condition=guard,
    )
    uow.put(
        {
            **_entry_key(user, message.message_id),
            "conversation_id": message.conversation_id,
            "with_user_id": other,
            "last_message_id": message.message_id,
            "last_sender_id": message.sender_id,
            "last_sent_at": message.sent_at,
            "unread": unread,
        }
    )


# -- reading ----------------------------------------------------------------------------


@domain.get("/conversations", response=Inbox, access=SIGNED_IN, query=PageQuery)
async def list_conversations(request: Request[None], ctx: Context) -> Inbox:
    """The caller's conversations, the one with the newest message first."""
    assert request.principal is not None
    page_of = page_query(request)
    page = await read_page(
        ctx.table,
        Key("PK").eq(f"INBOX#{request.principal.subject}") & Key("SK").begins_with("LAST#"),
        page_of,
        descending=True,
    )
    return Inbox(
        items=[ConversationSummary.model_validate(i) for i in page.items], cursor=page.cursor
    )


async def _own_conversation(request: Request[Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    """The conversation in the path and the caller's inbox pointer to it; 404 unless the
    caller is one of its two members and it holds a message."""
    assert request.principal is not None
    conversation = request.path_params["conversation_id"]
    members = _members(conversation)
    caller = request.principal.subject
    pointer = None
    if members is not None and caller in members:
        pointer = await ctx.table.get(_pointer_key(caller, conversation), consistent=True)
    if pointer is None:
        raise NotFound(f"no conversation {conversation}")
    return conversation, pointer


@domain.get(
    "/conversations/{conversation_id}/messages",
    response=Messages,
    access=SIGNED_IN,
    query=PageQuery,
)
async def list_messages(request: Request[None], ctx: Context) -> Messages:
    """A conversation's messages, newest first (a chat opens at its end)."""
    conversation, _ = await _own_conversation(request, ctx)
    page_of = page_query(request)
    page = await read_page(
        ctx.table,
        Key("PK").eq(f"CONVERSATION#{conversation}") & Key("SK").begins_with("MESSAGE#"),
        page_of,
        descending=True,
    )
    return Messages(items=[Message.model_validate(i) for i in page.items], cursor=page.cursor)


@domain.post(
    "/conversations/{conversation_id}/read", response=ConversationSummary, access=SIGNED_IN
)
async def mark_read(request: Request[None], ctx: Context) -> ConversationSummary:
    """Mark the conversation read up to its last message; `MESSAGE_READ` when that read
    something new."""
    assert request.principal is not None
    conversation, pointer = await _own_conversation(request, ctx)
    reader = request.principal.subject
    entry_key = _entry_key(reader, pointer["last_message_id"])
    entry = await ctx.table.get(entry_key, consistent=True)
    if entry is None:
        raise NotFound(f"no conversation {conversation}")
    if pointer["unread"]:
        last = pointer["last_message_id"]
        async with ctx.unit_of_work() as uow:
            uow.update(
                _pointer_key(reader, conversation),
                set={"unread": 0},
                condition=Attr("last_message_id").eq(last),
            )
            uow.update(entry_key, set={"unread": 0}, condition=Attr("PK").exists())
            uow.publish(
                MessageRead(
                    conversation_id=conversation,
                    reader_id=reader,
                    message_id=last,
                    read_at=_iso(ctx.now()),
                ),
                subject=conversation,
            )
    return ConversationSummary.model_validate({**entry, "unread": 0})


# -- live delivery ----------------------------------------------------------------------


async def remember_connection(connection: Connection, ctx: Context) -> None:
    """`$connect`, the caller's token verified: messages to them reach this connection."""
    user_id = connection.principal.subject
    expires_at = int(ctx.clock.now()) + MAX_CONNECTION_SECONDS
    async with ctx.unit_of_work() as uow:
        uow.put(
            {
                **_connection_key(user_id, connection.connection_id),
                "connection_id": connection.connection_id,
                "connected_at": _iso(ctx.now()),
                "expires_at": expires_at,
            }
        )
        uow.put(
            {
                **_connection_owner_key(connection.connection_id),
                "user_id": user_id,
                "expires_at": expires_at,
            }
        )


async def forget_connection(connection_id: str, ctx: Context) -> None:
    """`$disconnect`: the connection is closed, nothing more is posted to it."""
    await _forget(connection_id, ctx)


async def _forget(connection_id: str, ctx: Context) -> None:
    owner = await ctx.table.get(_connection_owner_key(connection_id), consistent=True)
    if owner is None:
        return
    await ctx.table.delete(_connection_key(owner["user_id"], connection_id))
    await ctx.table.delete(_connection_owner_key(connection_id))


live = domain.websocket(
    "/messages/live", on_connect=remember_connection, on_disconnect=forget_connection
)


@domain.task(DeliverMessage)
async def deliver_message(task: DeliverMessage, ctx: Context) -> None:
    """Push a new message to each of its recipient's live connections, once each; a
    connection found gone is forgotten."""
    item = await ctx.table.get(_message_key(task.conversation_id, task.message_id), consistent=True)
    if item is None:
        return  # erased since (its sender or recipient deleted their account)
    message = Message.model_validate(item)
    frame = orjson.dumps({"type": "message", "message": message.model_dump()})
    for connection_id in await _connections_of(message.recipient_id, ctx):
        delivery = _delivery_key(message.message_id, connection_id)
        if await ctx.table.get(delivery, consistent=True) is not None:
            continue
        try:
            await ctx.connections.post(connection_id, frame)
        except ConnectionGone:
            await _forget(connection_id, ctx)
            continue
        expires_at = int(ctx.clock.now() + DELIVERY_RECORD_TTL.total_seconds())
        await ctx.table.put({**delivery, "expires_at": expires_at})


async def _connections_of(user_id: str, ctx: Context) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        page = await ctx.table.query(
            Key("PK").eq(f"USER#{user_id}") & Key("SK").begins_with("CONNECTION#"),
            cursor=cursor,
            consistent=True,
        )
        found += [str(i["connection_id"]) for i in page.items]
        cursor = page.cursor
        if cursor is None:
            return found


# -- erasure ----------------------------------------------------------------------------


@domain.on(UserDeleted)
async def erase_user(event: UserDeleted, ctx: Context) -> None:
    """Erase every conversation the user took part in, for both members (each message
    holds the deleted user's words or was written to them), both sides of their follows and
    their connections. Each delete stands alone, so a retry finishes what a failure left;
    the tombstone, written first, keeps a late follow fact from bringing them back."""
    user_id = event.user_id
    await ctx.table.put(_erased_key(user_id))
    for pointer in await _partition(f"INBOX#{user_id}", "CONVERSATION#", ctx):
        conversation = str(pointer["SK"]).removeprefix("CONVERSATION#")
        members = _members(conversation) or (user_id, user_id)
        for message in await _partition(f"CONVERSATION#{conversation}", "MESSAGE#", ctx):
            await ctx.table.delete({"PK": message["PK"], "SK": message["SK"]})
        for member in members:
            held = await ctx.table.get(_pointer_key(member, conversation), consistent=True)
            if held is not None:
                await ctx.table.delete(_entry_key(member, held["last_message_id"]))
                await ctx.table.delete(_pointer_key(member, conversation))
    for followee in await _partition(f"FOLLOWS#{user_id}", "USER#", ctx):
        other = str(followee["SK"]).removeprefix("USER#")
        await ctx.table.delete(_followed_by_key(other, user_id))
        await ctx.table.delete(_follow_key(user_id, other))
    for follower in await _partition(f"FOLLOWED_BY#{user_id}", "USER#", ctx):
        other = str(follower["SK"]).removeprefix("USER#")
        await ctx.table.delete(_follow_key(other, user_id))
        await ctx.table.delete(_followed_by_key(user_id, other))
    for connection_id in await _connections_of(user_id, ctx):
        await _forget(connection_id, ctx)


async def _partition(partition: str, prefix: str, ctx: Context) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await ctx.table.query(
            Key("PK").eq(partition) & Key("SK").begins_with(prefix),
            cursor=cursor,
            consistent=True,
        )
        found += page.items
        cursor = page.cursor
        if cursor is None:
            return found
