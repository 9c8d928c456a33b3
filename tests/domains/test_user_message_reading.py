"""The inbox and a thread over HTTP: conversations newest first, messages newest first,
both paged by cursor; marking read; and nobody reads a conversation that is not theirs."""

from __future__ import annotations

from tests.domains.user_message import Messaging, messaging_platform


async def three_friends(m: Messaging) -> tuple[tuple[str, str], tuple[str, str], tuple[str, str]]:
    ada = await m.user("ada@example.com")
    bob = await m.user("bob@example.com")
    cyd = await m.user("cyd@example.com")
    await m.befriend(ada[0], bob[0])
    await m.befriend(ada[0], cyd[0])
    return ada, bob, cyd


async def test_the_inbox_lists_conversations_newest_first_with_unread_counts() -> None:
    async with messaging_platform() as m:
        (ada, ada_token), (bob, bob_token), (cyd, cyd_token) = await three_friends(m)
        await m.send(bob_token, ada, "one")
        m.clock.advance(1)
        await m.send(cyd_token, ada, "two")
        m.clock.advance(1)
        await m.send(bob_token, ada, "three")
        inbox = await m.call("GET", "/conversations", token=ada_token)
        first_page = await m.call("GET", "/conversations?limit=1", token=ada_token)
        cursor = first_page.json()["cursor"]
        second_page = await m.call(
            "GET", f"/conversations?limit=1&cursor={cursor}", token=ada_token
        )
        bobs = await m.call("GET", "/conversations", token=bob_token)
    assert inbox.status == 200
    items = inbox.json()["items"]
    assert [(i["with_user_id"], i["unread"]) for i in items] == [(bob, 2), (cyd, 1)]
    assert items[0]["last_sender_id"] == bob
    assert [i["with_user_id"] for i in first_page.json()["items"]] == [bob]
    assert [i["with_user_id"] for i in second_page.json()["items"]] == [cyd]
    assert [(i["with_user_id"], i["unread"]) for i in bobs.json()["items"]] == [(ada, 0)]


async def test_a_thread_pages_its_messages_newest_first() -> None:
    async with messaging_platform() as m:
        (ada, ada_token), (bob, bob_token), _ = await three_friends(m)
        for n in range(5):
            await m.send(
                ada_token if n % 2 == 0 else bob_token, bob if n % 2 == 0 else ada, f"m{n}"
            )
            m.clock.advance(1)
        conversation = m.facts("MESSAGE_SENT")[0]["conversation_id"]
        texts: list[str] = []
        path = f"/conversations/{conversation}/messages?limit=2"
        pages = 0
        while True:
            page = await m.call("GET", path, token=bob_token)
            assert page.status == 200, page.json()
            texts += [i["text"] for i in page.json()["items"]]
            pages += 1
            if page.json()["cursor"] is None:
                break
            path = f"/conversations/{conversation}/messages?limit=2&cursor={page.json()['cursor']}"
    assert texts == ["m4", "m3", "m2", "m1", "m0"]
    assert pages == 3


async def test_marking_read_clears_unread_and_says_so_once() -> None:
    async with messaging_platform() as m:
        (ada, ada_token), (_bob, bob_token), _ = await three_friends(m)
        await m.send(bob_token, ada, "one")
        last = await m.send(bob_token, ada, "two")
        conversation = last.json()["conversation_id"]
        read = await m.call("POST", f"/conversations/{conversation}/read", token=ada_token)
        again = await m.call("POST", f"/conversations/{conversation}/read", token=ada_token)
        await m.h.settle()
        inbox = await m.call("GET", "/conversations", token=ada_token)
        facts = m.facts("MESSAGE_READ")
    assert read.status == 200 and read.json()["unread"] == 0
    assert again.status == 200
    assert inbox.json()["items"][0]["unread"] == 0
    assert facts == [
        {
            "conversation_id": conversation,
            "reader_id": ada,
            "message_id": last.json()["message_id"],
            "read_at": facts[0]["read_at"],
        }
    ]


async def test_another_users_conversation_is_404_to_read_and_to_mark() -> None:
    async with messaging_platform() as m:
        (ada, ada_token), (bob, _bob_token), (cyd, cyd_token) = await three_friends(m)
        sent = await m.send(ada_token, bob, "just us")
        conversation = sent.json()["conversation_id"]
        thread = await m.call("GET", f"/conversations/{conversation}/messages", token=cyd_token)
        mark = await m.call("POST", f"/conversations/{conversation}/read", token=cyd_token)
        unknown = await m.call("GET", f"/conversations/{ada}~{cyd}/messages", token=cyd_token)
        garbage = await m.call("GET", "/conversations/nonsense/messages", token=ada_token)
        cyds = await m.call("GET", "/conversations", token=cyd_token)
    for answer in (thread, mark, unknown, garbage):
        assert answer.status == 404
        assert answer.headers["content-type"] == "application/problem+json"
    assert "just us" not in thread.body.decode()
    assert cyds.json()["items"] == []


async def test_a_cursor_from_elsewhere_or_a_bad_limit_is_422() -> None:
    async with messaging_platform() as m:
        (_ada, ada_token), (bob, _), _ = await three_friends(m)
        await m.send(ada_token, bob, "hi")
        forged = await m.call("GET", "/conversations?cursor=not-a-cursor", token=ada_token)
        too_many = await m.call("GET", "/conversations?limit=101", token=ada_token)
    assert forged.status == 422 and too_many.status == 422
    assert forged.headers["content-type"] == "application/problem+json"
