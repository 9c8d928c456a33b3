"""Posts over HTTP: created with POST_CREATED, size-limited, deleted only by their author,
and a deleted post gone from every feed it was copied into."""

from __future__ import annotations

from domains.social.app import MAX_POST_LENGTH
from tests.domains.social import social_platform


async def test_a_post_is_created_published_and_readable() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        created = await s.as_(ada, "POST", "/social/posts", {"text": "Hello, world"})
        post = created.json()
        read = await s.as_(bob, "GET", created.headers["location"])
        listed = await s.as_(bob, "GET", f"/social/users/{ada.user_id}/posts")
    assert created.status == 201
    assert created.headers["location"] == f"/social/users/{ada.user_id}/posts/{post['post_id']}"
    assert post["user_id"] == ada.user_id and post["text"] == "Hello, world"
    assert read.json() == post
    assert listed.json() == {"items": [post], "cursor": None}
    assert s.facts("POST_CREATED") == [post]


async def test_an_oversized_post_is_refused_with_a_problem_and_nothing_kept() -> None:
    async with social_platform() as s:
        ada = await s.join("Ada")
        longest = await s.as_(ada, "POST", "/social/posts", {"text": "a" * MAX_POST_LENGTH})
        too_long = await s.as_(ada, "POST", "/social/posts", {"text": "a" * (MAX_POST_LENGTH + 1)})
        blank = await s.as_(ada, "POST", "/social/posts", {"text": "   "})
        control = await s.as_(ada, "POST", "/social/posts", {"text": "bell \x07"})
    assert longest.status == 201
    for refused in (too_long, blank, control):
        assert refused.status == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:tctf:problem:invalid-body"
    assert len(s.facts("POST_CREATED")) == 1
    assert len(s.items("POSTS#")) == 1


async def test_deleting_your_post_publishes_post_deleted_and_removes_every_copy() -> None:
    async with social_platform() as s:
        ada, bob, cy = await s.join("Ada"), await s.join("Bob"), await s.join("Cy")
        await s.follow(bob, ada)
        await s.follow(cy, ada)
        post_id = await s.post(ada, "soon gone")
        assert len(s.items("FEED#")) == 2
        deleted = await s.as_(ada, "DELETE", f"/social/users/{ada.user_id}/posts/{post_id}")
        again = await s.as_(ada, "DELETE", f"/social/users/{ada.user_id}/posts/{post_id}")
        read = await s.as_(bob, "GET", f"/social/users/{ada.user_id}/posts/{post_id}")
        feeds = [await s.feed(bob), await s.feed(cy), await s.feed(ada)]
    assert deleted.status == 204
    assert again.status == read.status == 404
    assert s.facts("POST_DELETED") == [{"post_id": post_id, "user_id": ada.user_id}]
    assert s.items("FEED#") == [] and s.items("POSTS#") == []
    assert feeds == [[], [], []]


async def test_deleting_someone_elses_post_is_not_found_and_changes_nothing() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        post_id = await s.post(ada, "mine")
        as_path_owner = await s.as_(bob, "DELETE", f"/social/users/{ada.user_id}/posts/{post_id}")
        as_own_path = await s.as_(bob, "DELETE", f"/social/users/{bob.user_id}/posts/{post_id}")
    for answer in (as_path_owner, as_own_path):
        assert answer.status == 404
        assert answer.headers["content-type"] == "application/problem+json"
    assert s.facts("POST_DELETED") == []
    assert len(s.items("POSTS#")) == 1


async def test_a_blocked_user_cannot_read_the_blockers_posts() -> None:
    async with social_platform() as s:
        ada, bob = await s.join("Ada"), await s.join("Bob")
        post_id = await s.post(ada, "not for Bob")
        await s.as_(ada, "PUT", f"/social/blocks/{bob.user_id}")
        read = await s.as_(bob, "GET", f"/social/users/{ada.user_id}/posts/{post_id}")
        listed = await s.as_(bob, "GET", f"/social/users/{ada.user_id}/posts")
    assert read.status == listed.status == 404
