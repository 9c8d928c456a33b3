"""Every search handler re-delivered twice has one effect: the same index items and the same
answers, whether its idempotency record catches the duplicate or, that record expired, the
document's version does."""

from __future__ import annotations

import pytest

from bus.clock import ManualClock
from bus.memory import Faults
from domains.social.contracts import PostCreated
from tests.domains.search import Search, search_platform

DAY = 24 * 3600.0


async def _world(s: Search) -> None:
    """A post kept, a post deleted, a profile renamed, a user deleted."""
    ada, ada_session = await s.people.member("ada@example.com", "Ada Lovelace")
    bob, bob_session = await s.people.member("bob@example.com", "Bob Marley")
    await s.sign_in()
    await s.post("p1", "Reggae by the sea")
    await s.post("p2", "Counting engines")
    await s.delete_post("p2")
    renamed = await s.people.call(
        "PATCH", f"/users/{ada}", {"name": "Ada King"}, token=ada_session["access_token"]
    )
    assert renamed.status == 200, renamed.json()
    deleted = await s.people.call("DELETE", f"/users/{bob}", token=bob_session["access_token"])
    assert deleted.status == 204, deleted.json()
    await s.h.settle()


async def _answers(s: Search) -> list[list[str]]:
    token = await s.people.sign_in("reader@example.com")
    s.token = token.json()["access_token"]
    return [await s.ids(q) for q in ("reggae ", "engines ", "ada ", "king ", "bob ", "lovelace ")]


@pytest.mark.parametrize(
    ("message_type", "handler"),
    [
        ("POST_CREATED", "search.index_post"),
        ("POST_DELETED", "search.remove_post"),
        ("USER_CREATED", "search.index_new_profile"),
        ("USER_UPDATED", "search.reindex_profile"),
        ("USER_DELETED", "search.remove_profile"),
    ],
)
@pytest.mark.parametrize("days_later", [0.0, 16.0])
async def test_each_handler_redelivered_twice_has_one_effect(
    message_type: str, handler: str, days_later: float
) -> None:
    async with search_platform() as s:
        await _world(s)
        handled = len(s.h.handled(handler))
        state = s.index_items()
        answers = await _answers(s)
        clock = s.h.clock
        assert isinstance(clock, ManualClock)
        clock.advance(days_later * DAY)  # past the 15 days idempotency records live
        delivered = [e for e in s.h.published if e.type == message_type]
        await s.h.redeliver(delivered)
        assert s.index_items() == state
        assert await _answers(s) == answers
    assert handled >= 1 and delivered


async def test_the_world_the_redelivery_test_builds_is_the_one_described() -> None:
    async with search_platform() as s:
        await _world(s)
        answers = await _answers(s)
    # Ada renamed King (no longer Lovelace), Bob deleted, p2 deleted
    assert answers[0] == ["p1"] and answers[1] == [] and answers[4] == []
    assert answers[5] == [] and len(answers[2]) == 1 and answers[2] == answers[3]


async def test_facts_under_duplicates_and_reordering_end_in_the_same_index() -> None:
    texts = {f"p{n}": f"post number {n} about tea" for n in range(6)}
    async with search_platform(faults=Faults(duplicate_rate=0.5, reorder=True, max_delay=5)) as s:
        await s.sign_in()
        for post_id, text in texts.items():
            await s.h.publish(
                PostCreated(post_id=post_id, user_id="u", text=text, created_at="x"),
                source="social",
            )
        await s.h.settle()
        found = sorted(await s.ids("tea "))
    assert found == sorted(texts)
