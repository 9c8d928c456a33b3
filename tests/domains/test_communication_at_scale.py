"""The same campaign of 10,000 recipients through the in-memory transport with its faults on
(duplicated deliveries, any order) and 5% of the recipients' e-mails failing: each
recipient is sent exactly once or left in messaging_consumers' DLQ with its reason, and
CAMPAIGN_DELIVERED's counts agree with both."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from bus.clock import ManualClock, isoformat
from bus.memory import Faults
from domains.communication.contracts import BATCH_SIZE
from domains.users.contracts import UserCreated
from tests.domains.communication import MINUTE, as_admin, communication_alone, sends_per_recipient

RECIPIENTS = 10_000
#: Every twentieth address is refused by the provider: 5%.
POISON_EVERY = 20
FAULTS = Faults(duplicate_rate=0.1, reorder=True)
SEGMENT = {"kind": "plan", "plan": "pro"}


def address(number: int) -> str:
    return f"{'poison' if number % POISON_EVERY == 0 else 'user'}-{number:05d}@example.com"


async def test_ten_thousand_recipients_under_faults_are_each_sent_once_or_dead_lettered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with communication_alone(monkeypatch, faults=FAULTS, seed=14) as h:
        for number in range(RECIPIENTS):
            await h.publish(
                UserCreated(
                    user_id=f"user-{number:05d}", email=address(number), name="N", plan="pro"
                ),
                source="users",
            )
        await h.settle()
        send_at = isoformat(h.clock.now() + MINUTE)
        created = await as_admin(
            h,
            "POST",
            "/communication/campaigns",
            {"subject": "News", "body": "Hello", "segment": SEGMENT, "send_at": send_at},
        )
        assert created.status == 201, created.json()
        campaign_id = created.json()["campaign_id"]
        assert isinstance(h.clock, ManualClock)
        h.clock.advance(MINUTE)
        await h.settle()
        read = await as_admin(h, "GET", f"/communication/campaigns/{campaign_id}")
        parked = await h.dead_letters("messaging_consumers", "tasks")
    poison = {f"user-{n:05d}" for n in range(RECIPIENTS) if n % POISON_EVERY == 0}
    sent = sends_per_recipient(h)
    assert set(sent.values()) == {1}
    assert set(sent) == {f"user-{n:05d}" for n in range(RECIPIENTS)} - poison
    dead = Counter(orjson.loads(letter.body)["data"]["user_id"] for letter in parked)
    assert set(dead) == poison
    assert all("the provider refused poison-" in (letter.reason or "") for letter in parked)
    delivered = {e.id: e.data_dict() for e in h.published_of("CAMPAIGN_DELIVERED")}
    [counts] = delivered.values()
    assert (counts["queued"], counts["sent"], counts["failed"]) == (10_000, 9_500, 500)
    assert read.json()["progress"] == {
        "queued": 10_000,
        "sent": 9_500,
        "failed": 500,
        "all_queued": True,
    }
    assert len(h.published_of("DELIVER_CAMPAIGN_BATCH")) >= RECIPIENTS // BATCH_SIZE
