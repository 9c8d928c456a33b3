"""USER_DELETED erases every conversation the user was in, for both members, with their
follow projection and connections; and every handler re-delivered twice has one effect."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from domains.users.contracts import UserDeleted
from tests.domains.user_message import Messaging, messaging_platform

DAY = 24 * 3600.0


def business_items(m: Messaging) -> list[dict[str, Any]]:
    """user_message's own items: not its idempotency records or outbox, which a duplicate
    may touch without being an effect, nor items past their time to live, which DynamoDB
    deletes when it gets round to it."""
    now = m.clock.now()
    return sorted(
        (
            i
            for i in m.table.scan()
            if not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))
            and i.get("expires_at", now + 1) > now
        ),
        key=lambda i: (i["PK"], i["SK"]),
    )


async def test_a_deleted_user_leaves_no_conversation_behind() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        cyd, cyd_token = await m.user("cyd@example.com")
        await m.befriend(ada, bob)
        await m.befriend(bob, cyd)
        conversation = (await m.send(ada_token, bob, "ada to bob")).json()["conversation_id"]
        await m.send(bob_token, ada, "bob to ada")
        kept = await m.send(cyd_token, bob, "cyd to bob")
        async with m.live(ada_token) as ada_live:
            await ada_live.receive()
            await m.h.publish(UserDeleted(user_id=ada), source="users")
            await m.h.settle()
            left = business_items(m)
            bobs = await m.call("GET", "/conversations", token=bob_token)
            thread = await m.call("GET", f"/conversations/{conversation}/messages", token=bob_token)
    assert [i["with_user_id"] for i in bobs.json()["items"]] == [cyd]
    assert thread.status == 404
    assert [i for i in left if ada in str(i)] == [{"PK": f"ERASED#{ada}", "SK": "USER"}]
    assert [i["text"] for i in left if "text" in i] == ["cyd to bob"]
    assert kept.status == 201


@pytest.mark.parametrize(
    "message_type", ["USER_FOLLOWED", "USER_UNFOLLOWED", "DELIVER_MESSAGE", "USER_DELETED"]
)
@pytest.mark.parametrize("after_days", [0, 16])
async def test_each_handler_redelivered_twice_has_one_effect(
    message_type: str, after_days: int
) -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        cyd, cyd_token = await m.user("cyd@example.com")
        await m.befriend(ada, bob)
        await m.befriend(bob, cyd)
        await m.unfollow(cyd, ada)
        await m.send(ada_token, bob, "one")
        await m.send(cyd_token, bob, "two")
        await m.h.publish(UserDeleted(user_id=cyd), source="users")
        await m.h.settle()
        async with m.live(bob_token) as bob_live:
            await bob_live.receive()
            m.clock.advance(after_days * DAY)  # 16: past the idempotency records' life
            state = business_items(m)
            facts = Counter(e.type for e in m.h.published if e.type.startswith("MESSAGE_"))
            delivered = [e for e in m.h.published if e.type == message_type]
            assert delivered
            await m.h.redeliver(delivered)
            pushed = bob_live.pending()
            state_after = business_items(m)
    assert state_after == state
    assert Counter(e.type for e in m.h.published if e.type.startswith("MESSAGE_")) == facts
    assert pushed == []
