"""How a campaign's e-mails go out: in batches of at most 100, a poison recipient retried and
then left in messaging_consumers' DLQ with its reason while the rest are sent, a batch
delivered again sending each e-mail once, and a segment emptied before the start."""

from __future__ import annotations

import pytest

from domains.communication.contracts import BATCH_SIZE
from domains.users.contracts import UserCreated, UserDeleted
from tests.domains.communication import MINUTE, campaign_platform, sends_per_recipient


async def publish_users(c: object, emails: list[str]) -> list[str]:
    from tests.domains.communication import Campaigns

    assert isinstance(c, Campaigns)
    ids = []
    for number, email in enumerate(emails):
        user_id = f"user-{number:05d}"
        await c.h.publish(UserCreated(user_id=user_id, email=email, name=f"User {number}"))
        ids.append(user_id)
    await c.h.settle()
    return ids


async def test_a_large_segment_goes_out_in_batches_of_at_most_100(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        users = await publish_users(c, [f"u{n}@example.com" for n in range(250)])
        created = await c.create(token)
        await c.advance(MINUTE)
        read = await c.call(
            "GET", f"/communication/campaigns/{created.json()['campaign_id']}", token=token
        )
    batches = [e.data_dict() for e in c.h.published_of("DELIVER_CAMPAIGN_BATCH")]
    assert [b["batch"] for b in batches] == [0, 1, 2]
    assert read.json()["progress"] == {"queued": 251, "sent": 251, "failed": 0, "all_queued": True}
    assert set(users) <= set(sends_per_recipient(c.h))
    assert set(sends_per_recipient(c.h).values()) == {1}
    assert len(c.emails()) == 251 and BATCH_SIZE == 100


async def test_a_poison_recipient_is_retried_then_parked_without_holding_up_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        await publish_users(c, ["ada@example.com", "poison@example.com", "bob@example.com"])
        created = await c.create(token)
        await c.advance(MINUTE)
        campaign_id = created.json()["campaign_id"]
        read = await c.call("GET", f"/communication/campaigns/{campaign_id}", token=token)
        parked = await c.h.dead_letters("messaging_consumers", "tasks")
    assert read.json()["status"] == "delivered"
    assert read.json()["progress"] == {"queued": 4, "sent": 3, "failed": 1, "all_queued": True}
    # auth_password's invitation to poison@ is refused and parked too; the campaign's is ours.
    [letter] = [p for p in parked if campaign_id in p.body.decode()]
    assert "poison@example.com" in letter.body.decode()
    assert "refused poison@example.com 3 times" in (letter.reason or "")
    [failed] = c.campaign_facts("EMAIL_FAILED")
    assert failed["campaign_id"] == campaign_id
    [delivered] = c.facts("CAMPAIGN_DELIVERED")
    assert (delivered["queued"], delivered["sent"], delivered["failed"]) == (4, 3, 1)


async def test_a_batch_delivered_again_sends_each_email_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        await publish_users(c, [f"u{n}@example.com" for n in range(5)])
        await c.create(token)
        await c.advance(MINUTE)
        sent_before = len(c.campaign_facts("EMAIL_SENT"))
        [batch] = c.h.published_of("DELIVER_CAMPAIGN_BATCH")
        await c.h.runtime.publisher.send([batch, batch])
        await c.h.settle()
    assert set(sends_per_recipient(c.h).values()) == {1}
    assert len(c.campaign_facts("EMAIL_SENT")) == sent_before == 6
    assert len(c.facts("CAMPAIGN_DELIVERED")) == 1


async def test_a_segment_emptied_before_the_start_is_delivered_with_no_emails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        [ada] = await publish_users(c, ["ada@example.com"])
        created = await c.create(token, segment={"kind": "plan", "plan": "free"})
        await c.h.publish(UserCreated(user_id="x", email="x@example.com", name="X", plan="pro"))
        await c.h.publish(UserDeleted(user_id=ada))
        admin_id = next(
            str(e.data_dict()["user_id"])
            for e in c.h.published_of("USER_CREATED")
            if e.data_dict()["email"] == "root@example.com"
        )
        await c.h.publish(UserDeleted(user_id=admin_id))
        await c.advance(MINUTE)
    assert created.status == 201
    assert c.emails() == []
    [delivered] = c.facts("CAMPAIGN_DELIVERED")
    assert (delivered["queued"], delivered["sent"], delivered["failed"]) == (0, 0, 0)
