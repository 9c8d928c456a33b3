"""Every messaging_consumers handler re-delivered twice has one effect: no second e-mail, no
second fact, the same items, whether the duplicate is caught by its idempotency record or,
that record expired, by the domain's delivery records."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bus.envelope import Envelope
from domains.achievements.contracts import AchievementUnlocked
from domains.auth_core.contracts import AccountLocked
from tests.domains.billing import DAY
from tests.domains.mail import Mail, mail_platform

FACTS = ("EMAIL_SENT", "EMAIL_FAILED", "EMAIL_BOUNCED")
TASKS = {"SEND_EMAIL"}


def effects(m: Mail) -> tuple[Counter[str], list[dict[str, Any]]]:
    """The facts published and the domain's own items (not its idempotency records or
    outbox, which a duplicate may touch without being an effect)."""
    items = sorted(
        (i for i in m.items("") if not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))),
        key=lambda i: (i["PK"], i["SK"]),
    )
    return Counter(e.type for e in m.h.published if e.type in FACTS), items


async def redeliver_twice(m: Mail, envelopes: list[Envelope]) -> None:
    for envelope in envelopes:
        if envelope.type in TASKS:
            await m.h.runtime.publisher.send([envelope, envelope])
        else:
            await m.h.runtime.publisher.publish([envelope, envelope])
    await m.h.settle()


async def every_flow(m: Mail) -> None:
    ada, ada_token = await m.customer("ada@example.com")
    bob, bob_token = await m.customer("bob@example.com", "pm_card_chargeDeclined")
    await m.call("PATCH", f"/users/{ada}", {"locale": "de"}, token=ada_token)
    await m.subscribe(ada, ada_token)
    await m.subscribe(bob, bob_token)
    await m.h.publish(AccountLocked(user_id=ada, until="2026-12-02T03:00:00Z"), source="auth_core")
    await m.h.publish(
        AchievementUnlocked(user_id=ada, achievement_id="a", title="A", unlocked_at="x"),
        source="achievements",
    )
    await m.h.settle()
    await m.call("DELETE", f"/users/{bob}", token=bob_token)
    await m.h.settle()


HANDLERS = [
    ("USER_CREATED", "welcome_new_user"),
    ("USER_UPDATED", "track_user"),
    ("USER_DELETED", "forget_user"),
    ("ACCOUNT_LOCKED", "tell_account_locked"),
    ("INVOICE_PAID", "send_receipt"),
    ("PAYMENT_FAILED", "send_dunning_notice"),
    ("ACHIEVEMENT_UNLOCKED", "tell_achievement"),
    ("SEND_EMAIL", "deliver"),
]


@pytest.mark.parametrize("expired", [False, True], ids=["prompt", "after-the-records-expired"])
@pytest.mark.parametrize(("message_type", "handler"), HANDLERS)
async def test_each_handler_redelivered_twice_has_one_effect(
    message_type: str, handler: str, expired: bool
) -> None:
    async with mail_platform() as m:
        await every_flow(m)
        if expired:
            m.clock.advance(16 * DAY)  # past the domain's idempotency_ttl
        handled = len(m.h.handled(f"messaging_consumers.{handler}"))
        letters = len(m.items("MAILBOX#"))
        before = effects(m)
        delivered = [e for e in m.h.published if e.type == message_type]
        await redeliver_twice(m, delivered)
        after = effects(m)
        letters_after = len(m.items("MAILBOX#"))
    assert handled >= 1 and delivered
    assert letters_after == letters
    assert after == before
