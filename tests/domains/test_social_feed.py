"""The home feed: fan-out on write for ordinary authors, merged on read for authors above
the follower threshold, and both at once for an author crossing it; cursor pagination."""

from __future__ import annotations

import pytest

from bus.storage.unit_of_work import UnitOfWork
from domains.social.app import FAN_OUT_PAGE, MERGE_ON_READ_VARIABLE
from domains.social.feed import FEED_HORIZON
from domains.social.graph import Edge, TableGraph
from tests.domains.social import Member, Social, social_platform


async def test_an_ordinary_authors_post_is_copied_into_each_followers_feed() -> None:
    async with social_platform() as s:
        ada, bob, cy = await s.join("Ada"), await s.join("Bob"), await s.join("Cy")
        await s.follow(bob, ada)
        await s.post(ada, "fanned out")
        await s.post(cy, "not followed")
        bob_feed, ada_feed = await s.feed(bob), await s.feed(ada)
    assert [i["PK"] for i in s.items("FEED#")] == [f"FEED#{bob.user_id}"]
    assert bob_feed == ["fanned out"]
    assert ada_feed == ["fanned out"]  # your own posts are in your feed
    assert s.items("CELEBRITIES") == []


async def test_the_feed_is_newest_first_and_pages_with_a_cursor() -> None:
    async with social_platform() as s:
        ada, bob, cy = await s.join("Ada"), await s.join("Bob"), await s.join("Cy")
        await s.follow(bob, ada)
        await s.follow(bob, cy)
        for n in range(5):
            await s.post(ada if n % 2 else cy, f"post {n}")
        await s.post(bob, "mine")
        texts: list[str] = []
        cursor = ""
        pages = 0
        while True:
            page = await s.as_(bob, "GET", f"/social/feed?limit=2{cursor}")
            texts += [p["text"] for p in page.json()["items"]]
            pages += 1
            if page.json()["cursor"] is None:
                break
            cursor = f"&cursor={page.json()['cursor']}"
    assert texts == ["mine", "post 4", "post 3", "post 2", "post 1", "post 0"]
    assert pages in (3, 4)


async def test_a_cursor_the_feed_did_not_give_is_refused() -> None:
    async with social_platform() as s:
        bob = await s.join("Bob")
        answer = await s.as_(bob, "GET", "/social/feed?cursor=bm90LWEtcG9zdA")
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"


async def test_following_copies_recent_posts_and_unfollowing_hides_them() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        await s.post(ada, "before the follow")
        await s.follow(bob, ada)
        following = await s.feed(bob)
        await s.as_(bob, "DELETE", f"/social/following/{ada.user_id}")
        unfollowed = await s.feed(bob)
    assert following == ["before the follow"]
    assert unfollowed == []


async def test_an_author_above_the_threshold_is_merged_on_read_not_fanned_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MERGE_ON_READ_VARIABLE, "2")
    async with social_platform() as s:
        star = await s.join("Star")
        fans = [await s.join(name) for name in ("Bob", "Cy")]
        for fan in fans:
            await s.follow(fan, star)
        await s.post(star, "to the many")
        feeds = [await s.feed(fan) for fan in fans]
    assert [i["SK"] for i in s.items("CELEBRITIES")] == [f"USER#{star.user_id}"]
    assert s.items("FEED#") == []
    assert s.h.published_of("FAN_OUT_POST") == []
    assert feeds == [["to the many"], ["to the many"]]


async def test_an_author_crossing_the_threshold_shows_each_post_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MERGE_ON_READ_VARIABLE, "3")
    async with social_platform() as s:
        star = await s.join("Star")
        bob, cy, di = await s.join("Bob"), await s.join("Cy"), await s.join("Di")
        await s.follow(bob, star)
        await s.post(star, "while ordinary")
        await s.follow(cy, star)
        await s.follow(di, star)  # the third follower: from now on, merged on read
        await s.post(star, "while famous")
        feeds = [await s.feed(fan) for fan in (bob, cy, di)]
    assert len(s.h.published_of("FAN_OUT_POST")) == 1
    assert feeds == [["while famous", "while ordinary"]] * 3


async def test_a_post_reaches_more_followers_than_one_transaction_holds_and_leaves_them_all() -> (
    None
):
    async with social_platform() as s:
        ada = await s.join("Ada")
        table = s.h.runtime.tables["social"]
        graph = TableGraph(table)
        readers = [f"u{n:03}" for n in range(2 * FAN_OUT_PAGE + 1)]
        for batch in (readers[:90], readers[90:]):
            async with UnitOfWork(table) as uow:
                for reader in batch:
                    graph.add(uow, Edge.FOLLOWS, reader, ada.user_id, at="t")
        post_id = await s.post(ada, "to everyone")
        copies = len(s.items("FEED#"))
        await s.as_(ada, "DELETE", f"/social/users/{ada.user_id}/posts/{post_id}")
        dead = await s.h.dead_letters("social", "tasks")
    assert copies == len(readers)
    assert len(s.h.published_of("FAN_OUT_POST")) == 3
    assert s.items("FEED#") == []
    assert dead == []


async def signed_in_again(s: Social, who: Member) -> Member:
    """`who` with a fresh access token (theirs ran out while the clock moved on)."""
    session = await s.sign_in(who.email)
    return Member(who.user_id, str(session.json()["access_token"]), who.email)


async def test_feed_copies_expire_after_the_horizon_and_the_feed_pages_within_it() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        await s.follow(bob, ada)
        await s.post(ada, "old")
        await s.post(bob, "old mine")
        [copy] = s.items(f"FEED#{bob.user_id}")
        posted = s.clock.now()
        assert copy["expires_at"] == int(posted) + FEED_HORIZON
        s.clock.advance(FEED_HORIZON + 1)
        ada, bob = await signed_in_again(s, ada), await signed_in_again(s, bob)
        for text in ("new 1", "new 2"):
            await s.post(ada, text)
        await s.post(bob, "new mine")
        texts: list[str] = []
        cursor = ""
        while True:
            page = await s.as_(bob, "GET", f"/social/feed?limit=2{cursor}")
            assert page.status == 200, page.json()
            texts += [p["text"] for p in page.json()["items"]]
            if page.json()["cursor"] is None:
                break
            cursor = f"&cursor={page.json()['cursor']}"
        first = await s.as_(bob, "GET", "/social/feed?limit=1")
        s.clock.advance(FEED_HORIZON + 1)  # what the cursor names is gone too
        bob = await signed_in_again(s, bob)
        after_expiry = await s.as_(bob, "GET", f"/social/feed?cursor={first.json()['cursor']}")
    assert texts == [
        "new mine",
        "new 2",
        "new 1",
    ]  # nothing older than the horizon, from any source
    assert after_expiry.status == 200 and after_expiry.json() == {"items": [], "cursor": None}


async def test_following_copies_no_post_older_than_the_horizon() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        await s.post(ada, "long ago")
        s.clock.advance(FEED_HORIZON + 1)
        ada, bob = await signed_in_again(s, ada), await signed_in_again(s, bob)
        await s.post(ada, "lately")
        await s.follow(bob, ada)
        copies = [i["text"] for i in s.items(f"FEED#{bob.user_id}")]
        feed = await s.feed(bob)
    assert copies == ["lately"]
    assert feed == ["lately"]
