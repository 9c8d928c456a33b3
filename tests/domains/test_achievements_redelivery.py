"""Every achievements handler re-delivered twice has one effect: the same awards, the same
counters, the same facts — whether the duplicate meets its idempotency record or, that
record expired, only the engine's own conditions."""

from __future__ import annotations

import pytest

from domains.social.contracts import PostCreated, UserFollowed, UserUnfollowed
from tests.domains.achievements import Achieving, achievements_platform
from tests.domains.billing import DAY

ALL_RULES = ("first_post", "ten_followers", "first_invoice_paid", "big_spender", "week_streak")


async def a_busy_month(a: Achieving) -> tuple[str, str]:
    """Ada posts, gains ten followers and loses one, pays a business invoice and signs in
    seven days running; Bob signs up and leaves."""
    ada, token = await a.customer("ada@example.com")
    await a.subscribe(ada, token, "business")
    await a.happen(PostCreated(post_id="p1", user_id=ada, text="hi", created_at="x"))
    for n in range(11):
        await a.happen(UserFollowed(follower_id=f"fan{n}", followee_id=ada))
    await a.happen(UserUnfollowed(follower_id="fan0", followee_id=ada))
    for _ in range(6):
        await a.advance(DAY)
        await a.token("ada@example.com")
    bob, bob_token = await a.customer("bob@example.com", payment_method=None)
    await a.happen(PostCreated(post_id="p2", user_id=bob, text="hi", created_at="x"))
    assert (await a.call("DELETE", f"/users/{bob}", token=bob_token)).status == 204
    await a.h.settle()
    return ada, bob


@pytest.mark.parametrize(
    ("message_type", "handler"),
    [
        ("POST_CREATED", "achievements.first_post_on_post_created"),
        ("USER_FOLLOWED", "achievements.ten_followers_on_user_followed"),
        ("USER_UNFOLLOWED", "achievements.ten_followers_on_user_unfollowed"),
        ("INVOICE_PAID", "achievements.first_invoice_paid_on_invoice_paid"),
        ("INVOICE_PAID", "achievements.big_spender_on_invoice_paid"),
        ("SIGNED_IN", "achievements.week_streak_on_signed_in"),
        ("USER_CREATED", "achievements.know_user"),
        ("USER_DELETED", "achievements.erase_user"),
    ],
)
@pytest.mark.parametrize("records", ["kept", "expired"])
async def test_each_handler_redelivered_twice_has_one_effect(
    monkeypatch: pytest.MonkeyPatch, message_type: str, handler: str, records: str
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, bob = await a_busy_month(a)
        if records == "expired":
            await a.advance(31 * DAY)  # idempotency records last 15 days
        handled = len(a.h.handled(handler))
        unlocked = a.unlocked()
        items = a.items()
        delivered = [e for e in a.h.published if e.type == message_type]
        await a.h.redeliver(delivered)
        handled_again = len(a.h.handled(handler)) - handled
        items_after = a.items()
    assert handled >= 1 and delivered
    assert sorted(unlocked) == sorted([*((ada, rule) for rule in ALL_RULES), (bob, "first_post")])
    assert a.unlocked() == unlocked
    assert items_after == items
    # kept records skip the duplicates unrun; expired ones let the handler run, to no effect
    assert (handled_again == 0) == (records == "kept")
