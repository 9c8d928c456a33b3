"""People you may know over HTTP: followers of the caller's followers, most mutual first,
never the caller, anyone they follow or anyone blocked either way."""

from __future__ import annotations

from tests.domains.social import Member, Social, social_platform


def ids(answer_items: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(s["user_id"], s["mutual"]) for s in answer_items]


async def suggestions(s: Social, who: Member) -> list[tuple[object, object]]:
    answer = await s.as_(who, "GET", "/social/suggestions")
    assert answer.status == 200, answer.json()
    return ids(answer.json()["items"])


async def test_followers_of_followers_are_ranked_by_mutual_count() -> None:
    async with social_platform() as s:
        ada, bob, cy, di, ed = [await s.join(n) for n in ("Ada", "Bob", "Cy", "Di", "Ed")]
        await s.follow(bob, ada)  # Ada's followers: Bob and Cy
        await s.follow(cy, ada)
        await s.follow(di, bob)  # Di follows both of them, Ed one
        await s.follow(di, cy)
        await s.follow(ed, cy)
        found = await suggestions(s, ada)
        limited = await s.as_(ada, "GET", "/social/suggestions?limit=1")
    assert found == [(di.user_id, 2), (ed.user_id, 1)]
    assert ids(limited.json()["items"]) == [(di.user_id, 2)]


async def test_suggestions_exclude_you_those_you_follow_and_blocks_either_way() -> None:
    async with social_platform() as s:
        ada, bob, cy, di, ed, fay = [
            await s.join(n) for n in ("Ada", "Bob", "Cy", "Di", "Ed", "Fay")
        ]
        await s.follow(bob, ada)
        for candidate in (cy, di, ed, fay):
            await s.follow(candidate, bob)
        await s.follow(ada, bob)  # Ada follows Bob back: Ada is a follower of her follower
        await s.follow(ada, cy)  # already followed
        await s.as_(ada, "PUT", f"/social/blocks/{di.user_id}")  # blocked by Ada
        await s.as_(ed, "PUT", f"/social/blocks/{ada.user_id}")  # blocking Ada
        found = await suggestions(s, ada)
    assert found == [(fay.user_id, 1)]


async def test_no_followers_no_suggestions() -> None:
    async with social_platform() as s:
        ada = await s.join("Ada")
        assert await suggestions(s, ada) == []
