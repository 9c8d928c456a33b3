"""USER_DELETED erases a user's counters and awards; what arrives for them afterwards, late
or out of order, counts nothing."""

from __future__ import annotations

import pytest

from domains.social.contracts import PostCreated, UserFollowed
from tests.domains.achievements import ADMIN_EMAIL, achievements_platform


async def test_a_deleted_user_leaves_nothing_but_a_tombstone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        _, root = await a.customer(ADMIN_EMAIL, payment_method=None)
        ada, token = await a.customer("ada@example.com", payment_method=None)
        await a.happen(PostCreated(post_id="p1", user_id=ada, text="hi", created_at="x"))
        for n in range(3):
            await a.happen(UserFollowed(follower_id=f"fan{n}", followee_id=ada))
        before = [i["SK"] for i in a.items() if i["PK"] == f"USER#{ada}"]
        assert (await a.call("DELETE", f"/users/{ada}", token=token)).status == 204
        await a.h.settle()
        after = [i for i in a.items() if i["PK"] == f"USER#{ada}"]
        answer = await a.achievements(ada, root)
    assert "AWARD#first_post" in before and "COUNTER#ten_followers" in before
    assert [(i["SK"], sorted(i)) for i in after] == [
        ("PROFILE", ["PK", "SK", "erased_at", "user_id"])
    ]
    assert answer.status == 404


async def test_facts_arriving_after_the_deletion_count_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        late_post = a.fact(PostCreated(post_id="p1", user_id=ada, text="hi", created_at="x"))
        created = [e for e in a.h.published if e.type == "USER_CREATED"]
        assert (await a.call("DELETE", f"/users/{ada}", token=token)).status == 204
        await a.h.settle()
        await a.deliver(late_post, *created)
        after = [i["SK"] for i in a.items() if i["PK"] == f"USER#{ada}"]
    assert after == ["PROFILE"]
    assert a.unlocked() == []


async def test_a_deletion_overtaking_the_sign_up_keeps_the_user_erased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with achievements_platform(monkeypatch) as a:
        _, root = await a.customer(ADMIN_EMAIL, payment_method=None)
        ada, token = await a.customer("ada@example.com", payment_method=None)
        assert (await a.call("DELETE", f"/users/{ada}", token=token)).status == 204
        await a.h.settle()
        await a.deliver(*[e for e in a.h.published if e.type == "USER_CREATED"])
        answer = await a.achievements(ada, root)
    assert answer.status == 404
