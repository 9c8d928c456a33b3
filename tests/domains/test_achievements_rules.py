"""Every shipped achievement over HTTP: the facts that earn it, the fact announcing it once,
and the near misses that do not."""

from __future__ import annotations

import pytest

from domains.auth_core.contracts import SignedIn
from domains.social.contracts import PostCreated, UserFollowed, UserUnfollowed
from tests.domains.achievements import achievements_platform
from tests.domains.billing import DAY


def post(user_id: str, post_id: str) -> PostCreated:
    return PostCreated(
        post_id=post_id, user_id=user_id, text="hello", created_at="2026-01-01T00:00:00.000Z"
    )


async def test_a_first_post_unlocks_first_post_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        before = await a.earned(ada, token)
        await a.happen(post(ada, "p1"))
        await a.happen(post(ada, "p2"))
        answer = await a.achievements(ada, token)
    assert before == []
    assert answer.status == 200
    [achievement] = answer.json()["items"]
    assert achievement["achievement_id"] == "first_post"
    assert achievement["title"] == "First post"
    assert achievement["unlocked_at"] == "2026-01-01T00:00:00.000Z"
    assert answer.json()["cursor"] is None
    assert a.unlocked() == [(ada, "first_post")]


async def test_the_tenth_follower_unlocks_ten_followers(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        for n in range(9):
            await a.happen(UserFollowed(follower_id=f"fan{n}", followee_id=ada))
        after_nine = await a.earned(ada, token)
        await a.happen(UserFollowed(follower_id="fan9", followee_id=ada))
        after_ten = await a.earned(ada, token)
    assert after_nine == []
    assert after_ten == ["ten_followers"]
    assert a.unlocked() == [(ada, "ten_followers")]


async def test_a_follow_delivered_again_counts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        for n in range(9):
            follow = await a.happen(UserFollowed(follower_id=f"fan{n}", followee_id=ada))
        await a.deliver(follow, follow)
        # the same follower under a new event id (social retried its publish) is no new fan
        await a.happen(UserFollowed(follower_id="fan8", followee_id=ada))
        earned = await a.earned(ada, token)
    assert earned == []


async def test_an_unfollow_takes_a_follower_away(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        for n in range(10):
            if n == 3:
                await a.happen(UserUnfollowed(follower_id="fan0", followee_id=ada))
            await a.happen(UserFollowed(follower_id=f"fan{n}", followee_id=ada))
        nine = await a.earned(ada, token)
        await a.happen(UserFollowed(follower_id="fan0", followee_id=ada))  # back again
        ten = await a.earned(ada, token)
    assert nine == []
    assert ten == ["ten_followers"]


async def test_an_unfollow_delivered_before_its_follow_leaves_no_follower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        for n in range(1, 10):
            await a.happen(UserFollowed(follower_id=f"fan{n}", followee_id=ada))
        follow = a.fact(UserFollowed(follower_id="fan0", followee_id=ada))
        a.clock.advance(1.0)
        unfollow = a.fact(UserUnfollowed(follower_id="fan0", followee_id=ada))
        await a.deliver(unfollow, follow)
        earned = await a.earned(ada, token)
    assert earned == []  # nine followers: fan0 followed, then left


async def test_a_paid_pro_invoice_unlocks_first_invoice_paid_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com")
        await a.subscribe(ada, token, "pro")  # 15.00 EUR, not above 40.00
        earned = await a.earned(ada, token)
    assert len(a.facts("INVOICE_PAID")) == 1
    assert earned == ["first_invoice_paid"]
    assert a.h.handled("achievements.first_invoice_paid_on_invoice_paid")
    assert not a.h.handled("achievements.big_spender_on_invoice_paid")  # its pattern missed


async def test_a_paid_business_invoice_unlocks_big_spender_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com")
        await a.subscribe(ada, token, "business")  # 49.00 EUR
        await a.advance(31 * DAY)  # renewed and paid again: nothing new
        earned = await a.earned(ada, await a.token("ada@example.com"))
    assert len(a.facts("INVOICE_PAID")) == 2
    assert sorted(earned) == ["big_spender", "first_invoice_paid"]
    assert sorted(a.unlocked()) == [(ada, "big_spender"), (ada, "first_invoice_paid")]


async def test_signing_in_seven_days_in_a_row_unlocks_the_streak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, _ = await a.customer("ada@example.com", payment_method=None)  # day 1
        earned_by_day = []
        for _ in range(6):  # days 2 to 7, twice a day
            await a.advance(DAY)
            await a.token("ada@example.com")
            await a.advance(3600.0)
            earned_by_day.append(await a.earned(ada, await a.token("ada@example.com")))
    assert earned_by_day[:5] == [[]] * 5
    assert earned_by_day[5] == ["week_streak"]
    [unlocked] = a.facts("ACHIEVEMENT_UNLOCKED")
    assert unlocked["unlocked_at"] == "2026-01-07T05:00:00.000Z"


async def test_a_missed_day_breaks_the_streak(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, _ = await a.customer("ada@example.com", payment_method=None)  # day 1
        for day in (2, 3, 5, 6, 7, 8):  # day 4 missed: runs of 3 and 4 days
            a.clock.advance(DAY * (day - 1) - (a.clock.now() - 1_767_225_600.0))
            token = await a.token("ada@example.com")
        earned = await a.earned(ada, token)
    assert earned == []


async def test_days_delivered_out_of_order_still_make_a_streak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, _ = await a.customer("ada@example.com", payment_method=None)  # day 1
        days = []
        for _ in range(6):  # days 2 to 7, delivered last day first
            a.clock.advance(DAY)
            days.append(a.fact(SignedIn(user_id=ada, session_id="s"), source="auth_core"))
        await a.deliver(*reversed(days))
        earned = await a.earned(ada, await a.token("ada@example.com"))
    assert earned == ["week_streak"]
    assert a.unlocked() == [(ada, "week_streak")]
