"""Following, unfollowing and blocking over HTTP: each change once, and every refusal a
problem+json answer that changes nothing."""

from __future__ import annotations

from tests.domains.social import social_platform


async def test_following_records_the_edge_and_publishes_user_followed_once() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        first = await s.follow(ada, bob)
        again = await s.follow(ada, bob)
        followers = await s.as_(bob, "GET", "/social/followers")
        following = await s.as_(ada, "GET", "/social/following")
    assert first.status == again.status == 200
    assert first.json() == again.json() == {"user_id": bob.user_id, "since": first.json()["since"]}
    assert s.facts("USER_FOLLOWED") == [{"follower_id": ada.user_id, "followee_id": bob.user_id}]
    assert followers.json() == {"items": [ada.user_id], "cursor": None}
    assert following.json() == {"items": [bob.user_id], "cursor": None}


async def test_following_yourself_is_rejected() -> None:
    async with social_platform() as s:
        ada = await s.join("Ada")
        answer = await s.follow(ada, ada)
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "you cannot follow yourself"
    assert s.facts("USER_FOLLOWED") == []


async def test_following_an_unknown_or_deleted_user_is_not_found() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        unknown = await s.as_(ada, "PUT", "/social/following/0190a000-0000-7000-8000-000000000000")
        assert (await s.as_(bob, "DELETE", f"/users/{bob.user_id}")).status == 204
        deleted = await s.follow(ada, bob)
    assert unknown.status == deleted.status == 404
    assert deleted.headers["content-type"] == "application/problem+json"
    assert s.facts("USER_FOLLOWED") == []


async def test_unfollowing_removes_the_edge_and_publishes_user_unfollowed() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        await s.follow(ada, bob)
        assert s.profile(bob.user_id)["followers"] == 1
        gone = await s.as_(ada, "DELETE", f"/social/following/{bob.user_id}")
        again = await s.as_(ada, "DELETE", f"/social/following/{bob.user_id}")
        followers = await s.as_(bob, "GET", "/social/followers")
    assert gone.status == 204
    assert again.status == 404
    assert again.headers["content-type"] == "application/problem+json"
    assert s.facts("USER_UNFOLLOWED") == [{"follower_id": ada.user_id, "followee_id": bob.user_id}]
    assert followers.json()["items"] == []
    assert s.profile(bob.user_id)["followers"] == 0


async def test_unfollowing_someone_never_followed_is_not_found() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        answer = await s.as_(ada, "DELETE", f"/social/following/{bob.user_id}")
    assert answer.status == 404
    assert answer.json()["detail"] == f"you do not follow {bob.user_id}"
    assert s.facts("USER_UNFOLLOWED") == []


async def test_a_blocked_user_cannot_follow_and_is_told_not_found() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        assert (await s.as_(ada, "PUT", f"/social/blocks/{bob.user_id}")).status == 200
        answer = await s.follow(bob, ada)
        ada_follows = await s.follow(ada, bob)
    assert answer.status == 404
    assert answer.json()["detail"] == f"no user {ada.user_id}"
    assert ada_follows.status == 200  # a block stops the blocked, not the one blocking
    assert s.facts("USER_FOLLOWED") == [{"follower_id": ada.user_id, "followee_id": bob.user_id}]


async def test_blocking_ends_follows_both_ways_and_unblocking_allows_following_again() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        await s.follow(ada, bob)
        await s.follow(bob, ada)
        blocked = await s.as_(ada, "PUT", f"/social/blocks/{bob.user_id}")
        blocked_again = await s.as_(ada, "PUT", f"/social/blocks/{bob.user_id}")
        ada_followers = await s.as_(ada, "GET", "/social/followers")
        unblocked = await s.as_(ada, "DELETE", f"/social/blocks/{bob.user_id}")
        unblocked_again = await s.as_(ada, "DELETE", f"/social/blocks/{bob.user_id}")
        refollowed = await s.follow(bob, ada)
    assert blocked.status == blocked_again.status == 200
    assert blocked.json() == blocked_again.json()
    assert sorted(
        (f["follower_id"], f["followee_id"]) for f in s.facts("USER_UNFOLLOWED")
    ) == sorted([(ada.user_id, bob.user_id), (bob.user_id, ada.user_id)])
    assert ada_followers.json()["items"] == []
    assert unblocked.status == 204
    assert unblocked_again.status == 404
    assert refollowed.status == 200


async def test_blocking_yourself_is_rejected() -> None:
    async with social_platform() as s:
        ada = await s.join("Ada")
        answer = await s.as_(ada, "PUT", f"/social/blocks/{ada.user_id}")
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"


async def test_follower_lists_page_with_a_cursor() -> None:
    async with social_platform() as s:
        ada = await s.join("Ada")
        fans = [await s.join(name) for name in ("Bob", "Cy", "Di")]
        for fan in fans:
            await s.follow(fan, ada)
        first = await s.as_(ada, "GET", "/social/followers?limit=2")
        cursor = first.json()["cursor"]
        second = await s.as_(ada, "GET", f"/social/followers?limit=2&cursor={cursor}")
        bad = await s.as_(ada, "GET", "/social/followers?cursor=nonsense")
    assert len(first.json()["items"]) == 2
    assert sorted(first.json()["items"] + second.json()["items"]) == sorted(f.user_id for f in fans)
    assert second.json()["cursor"] is None
    assert bad.status == 422


async def test_routes_answer_only_to_a_signed_in_caller() -> None:
    async with social_platform() as s:
        answer = await s.call("GET", "/social/feed")
    assert answer.status == 401
