"""Every social handler re-delivered twice has one effect: the same facts, the same items,
whether the duplicate is caught by its idempotency record or, that record expired, by the
handler's own conditions."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.domains.social import Social, social_platform

FACTS = ("USER_FOLLOWED", "USER_UNFOLLOWED", "POST_CREATED", "POST_DELETED")
DAY = 24 * 3600.0


def fact_counts(s: Social) -> Counter[str]:
    return Counter(e.type for e in s.h.published if e.type in FACTS)


async def a_social_life(s: Social) -> None:
    """Follows, posts fanned out and deleted, a profile change, an account deleted."""
    ada, bob, cy = await s.join("Ada"), await s.join("Bob"), await s.join("Cy")
    await s.follow(bob, ada)
    await s.follow(cy, ada)
    await s.follow(ada, bob)
    kept = await s.post(ada, "kept")
    gone = await s.post(ada, "gone")
    await s.post(bob, "bob's")
    await s.as_(ada, "DELETE", f"/social/users/{ada.user_id}/posts/{gone}")
    await s.as_(ada, "PATCH", f"/users/{ada.user_id}", {"name": "Ada L."})
    await s.as_(bob, "DELETE", f"/users/{bob.user_id}")
    assert kept


@pytest.mark.parametrize(
    ("message_type", "handler"),
    [
        ("USER_CREATED", "social.project_user_created"),
        ("USER_UPDATED", "social.project_user_updated"),
        ("USER_DELETED", "social.forget_user"),
        ("FAN_OUT_POST", "social.fan_out_post"),
        ("ERASE_POST_COPIES", "social.erase_post_copies"),
        ("ERASE_USER", "social.erase_user"),
    ],
)
@pytest.mark.parametrize("late", [False, True], ids=["prompt", "after-idempotency-expiry"])
async def test_each_handler_redelivered_twice_has_one_effect(
    message_type: str, handler: str, late: bool
) -> None:
    async with social_platform() as s:
        await a_social_life(s)
        assert s.h.handled(handler)
        handled = len(s.h.handled(handler))
        facts, state = fact_counts(s), s.items()
        if late:
            s.clock.advance(16 * DAY)  # past every idempotency record's 15 days
        delivered = [e for e in s.h.published if e.type == message_type]
        await s.h.redeliver(delivered)
        state_after = s.items()
        handled_after = len(s.h.handled(handler))
    assert delivered
    assert fact_counts(s) == facts
    assert state_after == state
    if not late:
        assert handled_after == handled  # each duplicate skipped by its idempotency record
