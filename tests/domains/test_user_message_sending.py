"""Sending a message over HTTP: only between users who follow each other (403 problem+json
otherwise), MESSAGE_SENT without the text, and bad input answered 4xx problem+json."""

from __future__ import annotations

from tests.domains.user_message import messaging_platform

PROBLEM = "application/problem+json"


async def test_mutual_followers_exchange_a_message_and_the_fact_keeps_its_text_private() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, _ = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        sent = await m.send(ada_token, bob, "lunch at noon?")
        facts = m.facts("MESSAGE_SENT")
    assert sent.status == 201, sent.json()
    message = sent.json()
    assert message["sender_id"] == ada and message["recipient_id"] == bob
    assert message["text"] == "lunch at noon?"
    assert sent.headers["location"] == f"/conversations/{message['conversation_id']}/messages"
    assert facts == [
        {
            "message_id": message["message_id"],
            "conversation_id": message["conversation_id"],
            "sender_id": ada,
            "recipient_id": bob,
            "sent_at": message["sent_at"],
        }
    ]
    assert "lunch" not in str(facts)


async def test_a_message_to_someone_who_does_not_follow_back_is_403() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, _ = await m.user("bob@example.com")
        await m.follow(ada, bob)
        one_way = await m.send(ada_token, bob, "hi")
        strangers = await m.send(ada_token, "someone-else", "hi")
        assert m.facts("MESSAGE_SENT") == []
        assert m.items("CONVERSATION#") == []
    for answer in (one_way, strangers):
        assert answer.status == 403
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"] == "urn:tctf:problem:forbidden"
        assert "follow" in answer.json()["detail"]


async def test_an_unfollow_stops_the_conversation() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        assert (await m.send(ada_token, bob, "before")).status == 201
        await m.unfollow(bob, ada)
        after = await m.send(ada_token, bob, "after")
        reply = await m.send(bob_token, ada, "after")
    assert after.status == 403 and reply.status == 403


async def test_a_late_older_follow_fact_does_not_undo_a_newer_unfollow() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, _ = await m.user("bob@example.com")
        await m.follow(bob, ada)
        followed = await m.follow(ada, bob)
        m.clock.advance(1)
        await m.unfollow(ada, bob)
        # The transport may deliver the older fact again, after the newer one.
        await m.h.runtime.publisher.publish([followed])
        await m.h.settle()
        answer = await m.send(ada_token, bob, "hi")
    assert answer.status == 403


async def test_bad_messages_are_refused_with_problem_json() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, _ = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        to_self = await m.send(ada_token, ada, "note to self")
        empty = await m.send(ada_token, bob, "")
        too_long = await m.send(ada_token, bob, "x" * 4001)
        extra = await m.call(
            "POST", "/messages", {"recipient_id": bob, "text": "hi", "cc": ada}, token=ada_token
        )
        malformed = await m.call("POST", "/messages", raw=b"{", token=ada_token)
        anonymous = await m.call("POST", "/messages", {"recipient_id": bob, "text": "hi"})
        assert m.facts("MESSAGE_SENT") == []
    assert to_self.status == 422 and to_self.json()["type"] == "urn:tctf:problem:rejected"
    assert [empty.status, too_long.status, extra.status] == [422, 422, 422]
    assert malformed.status == 400
    assert anonymous.status == 401
    for answer in (to_self, empty, too_long, extra, malformed, anonymous):
        assert answer.headers["content-type"] == PROBLEM
