"""USER_DELETED erases the user from social: their follows both ways, blocks, posts (each
published as POST_DELETED), their copies in others' feeds and their own feed."""

from __future__ import annotations

import pytest

from bus.storage.unit_of_work import UnitOfWork
from domains.social import app
from domains.social.feed import post_key
from domains.social.graph import Edge, TableGraph
from domains.users.contracts import UserCreated, UserDeleted
from tests.domains.social import social_platform


async def test_a_deleted_user_leaves_no_follow_post_or_feed_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small batches, so the erasure takes several tasks as a large account's would.
    monkeypatch.setattr(app, "ERASE_PAGE", 3)
    monkeypatch.setattr(app, "ERASE_POSTS", 1)
    async with social_platform() as s:
        ada, bob, cy = await s.join("Ada"), await s.join("Bob"), await s.join("Cy")
        await s.follow(ada, bob)
        await s.follow(ada, cy)
        await s.follow(bob, ada)
        await s.follow(cy, ada)
        await s.as_(ada, "PUT", f"/social/blocks/{cy.user_id}")  # also ends Cy's follows
        await s.follow(bob, cy)
        posts = [await s.post(ada, f"ada {n}") for n in range(3)]
        await s.post(bob, "bob's")
        assert (await s.as_(ada, "DELETE", f"/users/{ada.user_id}")).status == 204
        bob_feed = await s.feed(bob)
        bob_followers = await s.as_(bob, "GET", "/social/followers")
        follow_again = await s.follow(bob, ada)
    left = [i for i in s.items() if ada.user_id in f"{i['PK']}{i['SK']}"]
    assert left == [s.profile(ada.user_id)]
    assert s.profile(ada.user_id)["status"] == "deleted"
    assert sorted(f["post_id"] for f in s.facts("POST_DELETED")) == sorted(posts)
    assert [i["text"] for i in s.items("FEED#")] == []  # no one follows Bob any more
    assert bob_feed == ["bob's"]
    assert bob_followers.json()["items"] == []
    assert s.profile(bob.user_id)["followers"] == 0
    assert s.profile(cy.user_id)["followers"] == 1  # Bob still follows Cy
    assert follow_again.status == 404
    assert len(s.h.handled("social.erase_user")) > 3


async def test_erasing_a_large_account_keeps_every_transaction_within_dynamodbs_limit() -> None:
    """Batches at their real sizes: the most a batch can hold still fits 100 operations."""
    async with social_platform() as s:
        table = s.h.runtime.tables["social"]
        graph = TableGraph(table)
        await s.h.publish(UserCreated(user_id="big", email="big@example.com", name="Big"))
        await s.h.settle()
        others = [f"u{n:03}" for n in range(2 * app.ERASE_PAGE)]
        async with UnitOfWork(table) as uow:
            for other in others[:90]:
                graph.add(uow, Edge.FOLLOWS, "big", other, at="t")
        async with UnitOfWork(table) as uow:
            for other in others[90:]:
                graph.add(uow, Edge.BLOCKS, "big", other, at="t")
        for n in range(2 * app.ERASE_POSTS):
            post_id = f"0190a000-0000-7000-8000-{n:012x}"
            item = {"post_id": post_id, "user_id": "big", "text": "x", "created_at": "t"}
            await table.put({**post_key("big", post_id), **item})
        await s.h.publish(UserDeleted(user_id="big"))
        await s.h.settle()
        dead = await s.h.dead_letters("social", "tasks")
    assert dead == []
    assert [i for i in s.items() if "big" in f"{i['PK']}{i['SK']}"] == [s.profile("big")]
    assert len(s.facts("POST_DELETED")) == 2 * app.ERASE_POSTS
