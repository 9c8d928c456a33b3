"""Every communication handler re-delivered twice has one effect: the same facts, the same
items, the same e-mails — whether the duplicate is caught by its idempotency record or, that
record expired, by the handler's own conditions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bus.storage.memory import InMemoryTable
from domains.achievements.contracts import AchievementUnlocked
from domains.users.contracts import UserDeleted, UserUpdated
from tests.domains.communication import (
    ADMIN_EMAIL,
    DAY,
    MINUTE,
    Campaigns,
    campaign_platform,
    sends_per_recipient,
)

FACTS = ("CAMPAIGN_SCHEDULED", "CAMPAIGN_DELIVERED", "EMAIL_SENT", "EMAIL_FAILED")


def fact_counts(c: Campaigns) -> Counter[str]:
    """Facts by type, each envelope once (the redelivered copies are recorded too)."""
    unique = {e.id: e.type for e in c.h.published if e.type in FACTS}
    return Counter(unique.values())


def business_items(c: Campaigns) -> list[dict[str, Any]]:
    """communication's own items: not its idempotency records or outbox."""
    table = c.h.runtime.tables["communication"]
    assert isinstance(table, InMemoryTable)
    return sorted(
        (i for i in table.scan() if not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))),
        key=lambda i: (i["PK"], i["SK"]),
    )


async def a_delivered_campaign(c: Campaigns) -> None:
    token = await c.admin()
    ada = await c.sign_up("ada@example.com", "Ada")
    await c.sign_up("poison@example.com", "Poison")
    c.clock.advance(1)
    await c.h.publish(UserUpdated(user_id=ada, email="ada@example.com", name="Ada L", plan="free"))
    await c.h.publish(
        AchievementUnlocked(
            user_id=ada, achievement_id="first-post", title="First post", unlocked_at=c.at(0)
        )
    )
    await c.h.settle()
    await c.create(token)
    await c.advance(MINUTE)
    await c.h.publish(UserDeleted(user_id=ada))
    await c.h.settle()
    assert len(c.facts("CAMPAIGN_DELIVERED")) == 1
    assert (await c.sign_in(ADMIN_EMAIL)).status == 201


@pytest.mark.parametrize("later", [0.0, 16 * DAY], ids=["promptly", "after-the-records-expire"])
@pytest.mark.parametrize(
    ("message_type", "handler"),
    [
        ("USER_CREATED", "communication.project_new_user"),
        ("USER_UPDATED", "communication.project_user_update"),
        ("ACHIEVEMENT_UNLOCKED", "communication.project_achievement"),
        ("USER_DELETED", "communication.forget_user"),
        ("START_DUE_CAMPAIGNS", "communication.start_due_campaigns"),
        ("QUEUE_CAMPAIGN_RECIPIENTS", "communication.queue_recipients"),
        ("DELIVER_CAMPAIGN_BATCH", "communication.deliver_batch"),
        ("EMAIL_SENT", "communication.count_sent"),
        ("EMAIL_FAILED", "communication.count_failed"),
    ],
)
async def test_each_handler_redelivered_twice_has_one_effect(
    monkeypatch: pytest.MonkeyPatch, message_type: str, handler: str, later: float
) -> None:
    async with campaign_platform(monkeypatch) as c:
        await a_delivered_campaign(c)
        await c.advance(later)
        handled = len(c.h.handled(handler))
        facts = fact_counts(c)
        state = business_items(c)
        sends = sends_per_recipient(c.h)
        delivered = [e for e in c.h.published if e.type == message_type]
        await c.h.redeliver(delivered)
        state_after = business_items(c)
    assert handled >= 1 and delivered
    assert fact_counts(c) == facts
    assert state_after == state
    assert sends_per_recipient(c.h) == sends
