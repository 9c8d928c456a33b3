"""What becomes of an e-mail that is not sent: a suppressed address, a bounce or complaint
from SES, a campaign letter that cannot be written, a sending whose outcome is unknown. Each
ends in EMAIL_FAILED (with its campaign) and the task in the DLQ with its reason."""

from __future__ import annotations

import orjson
import pytest

from domains.messaging_consumers.contracts import SendEmail
from tests.domains.mail import SES_FIXTURES, Mail, mail_platform

BOUNCE = (SES_FIXTURES / "bounce-notification.json").read_bytes()
COMPLAINT = (SES_FIXTURES / "complaint-notification.json").read_bytes()


def with_ses_message(notification: bytes, **changes: object) -> bytes:
    """The SNS document with its embedded SES notification changed."""
    outer = orjson.loads(notification)
    inner = orjson.loads(outer["Message"])
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = inner
        for name in parents:
            node = node[name]
        node[leaf] = value
    outer["Message"] = orjson.dumps(inner).decode()
    return orjson.dumps(outer)


async def task_letters(m: Mail) -> list[str]:
    return [
        letter.reason or "" for letter in await m.h.dead_letters("messaging_consumers", "tasks")
    ]


async def test_a_permanent_bounce_suppresses_the_address_and_later_mail_fails_as_suppressed() -> (
    None
):
    async with mail_platform() as m:
        answer = await m.notify(BOUNCE)
        await m.h.send(
            SendEmail(to="jane@example.com", template="welcome", name="Jane", campaign_id="c1"),
            source="communication",
        )
        await m.h.settle()
        reasons = await task_letters(m)
    assert answer.status == 200 and answer.json()["suppressed"] == ["jane@example.com"]
    assert m.facts("EMAIL_BOUNCED") == [{"email": "jane@example.com", "kind": "bounce"}]
    [failed] = m.facts("EMAIL_FAILED")
    assert failed["reason"] == "suppressed" and failed["campaign_id"] == "c1"
    assert m.letters("jane@example.com") == [] and m.facts("EMAIL_SENT") == []
    assert len(reasons) == 1 and reasons[0].endswith("suppressed")


async def test_a_complaint_suppresses_and_a_replayed_notification_takes_effect_once() -> None:
    async with mail_platform() as m:
        first = await m.notify(COMPLAINT)
        again = await m.notify(COMPLAINT)
        [suppressed] = m.items("SUPPRESSED#")
    assert first.json() == {
        "received": True,
        "duplicate": False,
        "suppressed": ["richard@example.com"],
    }
    assert again.json() == {"received": True, "duplicate": True, "suppressed": []}
    assert m.facts("EMAIL_BOUNCED") == [{"email": "richard@example.com", "kind": "complaint"}]
    assert suppressed["kind"] == "complaint"


async def test_a_transient_bounce_suppresses_nothing() -> None:
    async with mail_platform() as m:
        answer = await m.notify(with_ses_message(BOUNCE, bounce__bounceType="Transient"))
    assert answer.status == 200 and answer.json()["suppressed"] == []
    assert m.items("SUPPRESSED#") == [] and m.facts("EMAIL_BOUNCED") == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"Type": "SubscriptionConfirmation", "MessageId": "m", "TopicArn": "t", "Message": "{}"}',
        orjson.dumps({**orjson.loads(BOUNCE), "Message": "not json"}),
        with_ses_message(BOUNCE, notificationType="Send"),
        with_ses_message(BOUNCE, bounce__bouncedRecipients=[]),
        with_ses_message(BOUNCE, bounce__bouncedRecipients=[{"emailAddress": "no address"}]),
    ],
    ids=[
        "garbage",
        "not-a-notification",
        "message-not-json",
        "unknown-type",
        "no-one",
        "bad-address",
    ],
)
async def test_a_malformed_notification_is_a_422_problem_and_records_nothing(body: bytes) -> None:
    async with mail_platform() as m:
        answer = await m.notify(body)
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert m.items("SUPPRESSED#") == m.items("NOTIFICATION#") == []


async def test_the_notification_route_is_not_reachable_through_the_public_gateway() -> None:
    async with mail_platform() as m:
        answer = await m.client.request("POST", "/mail/notifications", raw=BOUNCE)
    assert answer.status == 404 and m.items("SUPPRESSED#") == []


async def test_a_campaign_letter_carries_one_click_unsubscribe_headers_and_its_campaign() -> None:
    async with mail_platform() as m:
        await m.h.send(
            SendEmail(
                to="ada@example.com",
                template="campaign",
                name="Ada",
                campaign_id="spring",
                subject="Spring news",
                body="Hello Ada, here is what is new.",
                unsubscribe_url="https://example.com/unsubscribe?token=secret-token",
            ),
            source="communication",
        )
        await m.h.settle()
        [letter] = m.letters("ada@example.com")
    assert letter["subject"] == "Spring news"
    assert letter["headers"] == {
        "List-Unsubscribe": "<https://example.com/unsubscribe?token=secret-token>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    [fact] = m.facts("EMAIL_SENT")
    assert fact["campaign_id"] == "spring" and fact["template"] == "campaign"
    assert "secret-token" not in orjson.dumps(m.items("DELIVERY#")).decode()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"subject": None}, "a campaign e-mail needs its subject and body"),
        (
            {"unsubscribe_url": "http://example.com/u?token=t"},
            "an unsubscribe link is an https URL (RFC 8058)",
        ),
    ],
)
async def test_a_campaign_letter_that_cannot_be_written_fails_with_its_campaign_and_reason(
    changes: dict[str, object], reason: str
) -> None:
    task = {
        "to": "ada@example.com",
        "template": "campaign",
        "name": "Ada",
        "campaign_id": "spring",
        "subject": "Spring news",
        "body": "Hello",
        **changes,
    }
    async with mail_platform() as m:
        await m.h.send(SendEmail.model_validate(task), source="communication")
        await m.h.settle()
        reasons = await task_letters(m)
    [failed] = m.facts("EMAIL_FAILED")
    assert (failed["reason"], failed["campaign_id"]) == (reason, "spring")
    assert len(reasons) == 1 and reasons[0].endswith(reason)
    assert m.letters("ada@example.com") == []


async def test_a_task_whose_earlier_sending_died_midway_is_not_sent_again() -> None:
    """The crash window: the provider may have accepted the letter before the process died,
    so the redelivered task fails as unconfirmed rather than risk a second e-mail."""
    async with mail_platform() as m:
        envelope = await m.h.send(
            SendEmail(to="ada@example.com", template="welcome", name="Ada"), source="auth_password"
        )
        # What the dead attempt left: its claim, written before it called the provider.
        table = m.h.runtime.tables["messaging_consumers"]
        await table.put(
            {"PK": f"DELIVERY#{envelope.id}", "SK": "DELIVERY", "state": "sending", "refusals": 0}
        )
        await m.h.settle()
        reasons = await task_letters(m)
    assert m.letters("ada@example.com") == [] and m.facts("EMAIL_SENT") == []
    [failed] = m.facts("EMAIL_FAILED")
    assert str(failed["reason"]).startswith("unconfirmed")
    assert len(reasons) == 1 and "unconfirmed" in reasons[0]


async def test_a_task_naming_no_template_the_domain_knows_is_dead_lettered_with_why() -> None:
    async with mail_platform() as m:
        context = m.h.runtime.context("auth_password")
        envelope = context.envelope_for(SendEmail(to="a@b.cd", template="welcome", name="A"))
        unknown = envelope._replace(data={"to": "a@b.cd", "template": "promo", "name": "A"})
        await m.h.runtime.publisher.send([unknown])
        await m.h.settle()
        reasons = await task_letters(m)
    assert len(reasons) == 1 and "template" in reasons[0]
    assert m.h.handled("messaging_consumers.deliver") == []


@pytest.mark.parametrize(
    ("bounced", "sent_to"),
    [
        pytest.param("Jane@Bücher.Example", "jane@xn--bcher-kva.example", id="unicode-bounce"),
        pytest.param("JANE@XN--BCHER-KVA.EXAMPLE", "Jane@BÜCHER.example.", id="ascii-bounce"),
        pytest.param("jane@MAIL.Example.COM", "Jane@mail.example.com", id="mixed-case"),
    ],
)
async def test_a_bounced_address_is_suppressed_however_its_domain_is_spelled(
    bounced: str, sent_to: str
) -> None:
    """SES may report a recipient's domain as Unicode or as IDNA (punycode), in any case;
    a task may name it either way: the suppression list keys on one spelling."""
    bounce = with_ses_message(BOUNCE, bounce__bouncedRecipients=[{"emailAddress": bounced}])
    async with mail_platform() as m:
        answer = await m.notify(bounce)
        await m.h.send(
            SendEmail(to=sent_to, template="welcome", name="Jane"), source="communication"
        )
        await m.h.settle()
    assert answer.status == 200, answer.json()
    [failed] = m.facts("EMAIL_FAILED")
    assert failed["reason"] == "suppressed"
    assert m.facts("EMAIL_SENT") == []


async def test_a_task_to_no_address_at_all_fails_with_its_reason() -> None:
    async with mail_platform() as m:
        await m.h.send(
            SendEmail(to="not an address", template="welcome", name="Nobody"),
            source="communication",
        )
        await m.h.settle()
        reasons = await task_letters(m)
    [failed] = m.facts("EMAIL_FAILED")
    assert failed["reason"].startswith("not an e-mail address")
    assert len(reasons) == 1 and "not an e-mail address" in reasons[0]
