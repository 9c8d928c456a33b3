"""communication's campaigns over HTTP: an admin schedules one for a segment, the minute's
schedule starts it at its time, its progress is readable while it runs, CAMPAIGN_DELIVERED
carries the counts; cancelling, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from domains.messaging_consumers.contracts import EmailFailed, EmailSent
from tests.domains.communication import (
    ADMIN_EMAIL,
    DAY,
    MINUTE,
    campaign_platform,
    sends_per_recipient,
)


async def test_a_campaign_is_sent_to_its_segment_at_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        ada = await c.sign_up("ada@example.com", "Ada")
        bob = await c.sign_up("bob@example.com", "Bob")
        created = await c.create(token, send_at=c.at(10 * MINUTE))
        campaign_id = created.json()["campaign_id"]
        path = f"/communication/campaigns/{campaign_id}"
        await c.advance(9 * MINUTE)
        before = await c.call("GET", path, token=token)
        await c.advance(MINUTE)
        after = await c.call("GET", path, token=token)
    assert created.status == 201, created.json()
    assert created.headers["location"] == path
    [scheduled] = c.facts("CAMPAIGN_SCHEDULED")
    assert scheduled["campaign_id"] == campaign_id
    assert before.json()["status"] == "scheduled"
    assert after.json()["status"] == "delivered"
    assert after.json()["progress"] == {"queued": 3, "sent": 3, "failed": 0, "all_queued": True}
    recipients = {e["user_id"] for e in c.emails()}
    assert {ada, bob} <= recipients and len(recipients) == 3  # and the admin, on free too
    email = next(e for e in c.emails() if e["user_id"] == ada)
    assert email["template"] == "campaign" and email["subject"] == "Spring news"
    assert email["unsubscribe_url"].startswith("http://localhost:8000/unsubscribe?token=")
    [delivered] = c.facts("CAMPAIGN_DELIVERED")
    assert (delivered["queued"], delivered["sent"], delivered["failed"]) == (3, 3, 0)
    assert set(sends_per_recipient(c.h).values()) == {1}


async def test_progress_is_readable_while_the_campaign_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch, answering=False) as c:
        token = await c.admin()
        await c.sign_up("ada@example.com", "Ada")
        await c.sign_up("bob@example.com", "Bob")
        created = await c.create(token)
        path = f"/communication/campaigns/{created.json()['campaign_id']}"
        await c.advance(MINUTE)
        queued = await c.call("GET", path, token=token)
        first, second, third = c.emails()
        # messaging_consumers' side, as it reports: one sent, one failed for good.
        await c.h.publish(sent(first), source="messaging_consumers")
        await c.h.publish(failed(second), source="messaging_consumers")
        await c.h.settle()
        running = await c.call("GET", path, token=token)
        await c.h.publish(sent(third), source="messaging_consumers")
        await c.h.settle()
        done = await c.call("GET", path, token=token)
    assert queued.json()["status"] == "sending"
    assert queued.json()["progress"] == {"queued": 3, "sent": 0, "failed": 0, "all_queued": True}
    assert running.json()["status"] == "sending"
    assert running.json()["progress"] == {"queued": 3, "sent": 1, "failed": 1, "all_queued": True}
    assert c.facts("CAMPAIGN_DELIVERED")[0]["sent"] == 2
    assert done.json()["status"] == "delivered"
    assert done.json()["delivered_at"] is not None


def sent(email: dict[str, Any]) -> EmailSent:
    return EmailSent(
        to=email["to"],
        template="campaign",
        message_id="ses-1",
        user_id=email["user_id"],
        campaign_id=email["campaign_id"],
    )


def failed(email: dict[str, Any]) -> EmailFailed:
    return EmailFailed(
        to=email["to"],
        template="campaign",
        reason="the provider refused it",
        user_id=email["user_id"],
        campaign_id=email["campaign_id"],
    )


async def test_segments_by_plan_sign_up_date_and_achievement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from domains.achievements.contracts import AchievementUnlocked
    from domains.users.contracts import UserUpdated

    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        early = await c.sign_up("early@example.com", "Early")
        await c.advance(DAY)
        late_from = c.at(0)
        late = await c.sign_up("late@example.com", "Late")
        c.clock.advance(1)
        await c.h.publish(
            UserUpdated(user_id=late, email="late@example.com", name="Late", plan="pro"),
            source="users",
        )
        await c.h.publish(
            AchievementUnlocked(
                user_id=early,
                achievement_id="first-post",
                title="First post",
                unlocked_at=late_from,
            ),
            source="achievements",
        )
        await c.h.settle()
        token = (await c.sign_in(ADMIN_EMAIL)).json()["access_token"]
        segments = [
            {"kind": "plan", "plan": "pro"},
            {"kind": "signed_up", "signed_up_from": late_from, "signed_up_until": c.at(DAY)},
            {"kind": "achievement", "achievement_id": "first-post"},
        ]
        ids = []
        for segment in segments:
            created = await c.create(token, segment=segment)
            assert created.status == 201, created.json()
            ids.append(created.json()["campaign_id"])
        await c.advance(MINUTE)
    by_campaign = {
        campaign_id: {e["user_id"] for e in c.emails() if e["campaign_id"] == campaign_id}
        for campaign_id in ids
    }
    assert [by_campaign[i] for i in ids] == [{late}, {late}, {early}]


async def test_an_admin_cancels_a_campaign_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        created = await c.create(token, send_at=c.at(5 * MINUTE))
        path = f"/communication/campaigns/{created.json()['campaign_id']}"
        canceled = await c.call("POST", f"{path}/cancel", token=token)
        again = await c.call("POST", f"{path}/cancel", token=token)
        await c.advance(10 * MINUTE)
        read = await c.call("GET", path, token=token)
    assert canceled.status == 200 and canceled.json()["status"] == "canceled"
    assert again.status == 200
    assert read.json()["status"] == "canceled"
    assert c.emails() == [] and c.facts("CAMPAIGN_DELIVERED") == []


async def test_a_started_campaign_cannot_be_canceled(monkeypatch: pytest.MonkeyPatch) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        created = await c.create(token)
        await c.advance(MINUTE)
        path = f"/communication/campaigns/{created.json()['campaign_id']}"
        answer = await c.call("POST", f"{path}/cancel", token=token)
    assert answer.status == 409
    assert answer.headers["content-type"] == "application/problem+json"


async def test_campaigns_are_listed_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        for subject in ("one", "two", "three"):
            await c.create(token, subject=subject)
        first = await c.call("GET", "/communication/campaigns?limit=2", token=token)
        cursor = first.json()["cursor"]
        rest = await c.call("GET", f"/communication/campaigns?limit=2&cursor={cursor}", token=token)
        bad = await c.call("GET", "/communication/campaigns?cursor=nonsense", token=token)
    subjects = [i["subject"] for i in first.json()["items"] + rest.json()["items"]]
    assert subjects == ["one", "two", "three"]
    assert rest.json()["cursor"] is None
    assert bad.status == 422


async def test_a_member_who_is_no_admin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        created = await c.create(token)
        path = f"/communication/campaigns/{created.json()['campaign_id']}"
        _, session = await c.member("ada@example.com")
        member = str(session["access_token"])
        answers = [
            await c.create(member),
            await c.call("GET", path, token=member),
            await c.call("POST", f"{path}/cancel", token=member),
            await c.call("GET", "/communication/campaigns", token=member),
            await c.call("GET", path),
        ]
    assert [a.status for a in answers] == [403, 403, 403, 403, 401]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)


@pytest.mark.parametrize(
    ("draft", "why"),
    [
        ({"send_at": "2025-12-31T23:59:00Z"}, "in the future"),
        ({"send_at": "2028-01-01T00:00:00Z"}, "days ahead"),
        ({"send_at": "2026-01-01T10:00:00"}, "timezone"),
        ({"send_at": "tomorrow"}, "datetime"),
        ({"subject": "two\nlines"}, "one line"),
        ({"segment": {"kind": "plan", "plan": "gold"}}, "plan"),
        ({"segment": {"kind": "everyone"}}, "kind"),
        (
            {
                "segment": {
                    "kind": "signed_up",
                    "signed_up_from": "2026-02-01T00:00:00Z",
                    "signed_up_until": "2026-01-01T00:00:00Z",
                }
            },
            "before",
        ),
        ({"segment": {"kind": "plan", "plan": "business"}}, "reaches no one"),
    ],
)
async def test_an_invalid_campaign_is_refused_with_a_problem(
    monkeypatch: pytest.MonkeyPatch, draft: dict[str, object], why: str
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        answer = await c.create(token, **draft)
    assert answer.status == 422, answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert why in str(answer.json()), answer.json()
    assert c.facts("CAMPAIGN_SCHEDULED") == []


async def test_an_unknown_campaign_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    async with campaign_platform(monkeypatch) as c:
        token = await c.admin()
        answer = await c.call("GET", "/communication/campaigns/nope", token=token)
    assert answer.status == 404
