"""The SES mailer on moto server: letters go out through SESv2 as raw MIME and EMAIL_SENT
carries SES's message id; a refusal is retried, a rejection is not, and either ends in
EMAIL_FAILED with the task in the DLQ."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from adapters.aws.ses import SesMailProvider
from bus.ids import IdGenerator
from domains.messaging_consumers.contracts import SendEmail
from tests.domains.mail import mail_platform


def parsed(raw: str) -> email.message.EmailMessage:
    return email.message_from_string(raw, policy=email.policy.default)


def ses_sent(to: str) -> list[dict[str, Any]]:
    """What moto's SES holds as sent to `to`: the raw messages its `/moto-api/data.json`
    lists, read where the session's moto server keeps them, in this process (that
    dump serializes every model of the session, seconds per read late in a run)."""
    from moto.ses.models import RawMessage

    tracked: list[RawMessage] = RawMessage.instances_tracked  # type: ignore[attr-defined]
    return [
        {"id": m.id, "destinations": m.destinations, "raw_data": m.raw_data}
        for m in tracked
        if to in m.destinations
    ]


@pytest.fixture
def sender(moto_endpoint: str) -> str:
    """A sender moto's SES has verified, as SES must before it sends."""
    address = f"mail-{IdGenerator()()[:8]}@example.com"
    client = boto3.client("sesv2", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_email_identity(EmailIdentity=address)
    return address


@pytest.fixture
def ses(moto_endpoint: str, sender: str) -> Iterator[str]:
    """SES at moto's endpoint, sending as the verified sender (the harness is given the
    provider, as a deployed function's boot gives it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_SESV2", moto_endpoint)
        patch.setenv("TCTF_MAIL_FROM", sender)
        yield moto_endpoint


def unique(name: str) -> str:
    return f"{name}-{IdGenerator()()[-12:]}@example.com"


async def test_sign_up_mail_goes_through_ses_with_its_message_id(ses: str) -> None:
    address = unique("ada")
    async with mail_platform(mail_provider=SesMailProvider()) as m:
        created = await m.sign_up_with({"email": address, "name": "Ada", "locale": "de"})
        mailbox = await m.read_mailbox(f"to={address}")
    assert created.status == 201
    messages = ses_sent(address)
    subjects = sorted(str(parsed(x["raw_data"])["Subject"]) for x in messages)
    assert subjects == sorted(["W\u00e4hle dein Passwort", "Willkommen, Ada"])
    assert {f["message_id"] for f in m.facts("EMAIL_SENT")} == {x["id"] for x in messages}
    assert m.items("MAILBOX#") == []
    assert mailbox.status == 404  # no local mailbox where SES sends


async def test_a_campaign_reaches_ses_with_its_unsubscribe_headers(ses: str) -> None:
    address = unique("bob")
    async with mail_platform(mail_provider=SesMailProvider()) as m:
        await m.h.send(
            SendEmail(
                to=address,
                template="campaign",
                name="Bob",
                campaign_id="spring",
                subject="Spring news",
                body="Hello Bob",
                unsubscribe_url="https://example.com/u?token=t",
            ),
            source="auth_password",
        )
        await m.h.settle()
    [message] = ses_sent(address)
    letter = parsed(message["raw_data"])
    assert letter["List-Unsubscribe"] == "<https://example.com/u?token=t>"
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_ses_rejecting_an_unverified_sender_fails_the_e_mail_at_once(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", moto_endpoint)
    monkeypatch.setenv("TCTF_MAIL_FROM", unique("unverified"))
    address = unique("carl")
    async with mail_platform(mail_provider=SesMailProvider()) as m:
        await m.h.send(
            SendEmail(to=address, template="welcome", name="Carl", campaign_id="c9"),
            source="auth_password",
        )
        await m.h.settle()
        letters = await m.h.dead_letters("messaging_consumers", "tasks")
    [failed] = m.facts("EMAIL_FAILED")
    assert str(failed["reason"]).startswith("rejected: SES MessageRejected")
    assert failed["campaign_id"] == "c9"
    assert len(m.h.handled("messaging_consumers.deliver")) == 0
    assert len(letters) == 1 and "MessageRejected" in (letters[0].reason or "")
    assert m.facts("EMAIL_SENT") == [] and ses_sent(address) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_ses_unreachable_is_retried_and_fails_after_the_receive_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the SDK's own retries, off
    async with mail_platform(mail_provider=SesMailProvider()) as m:
        await m.h.send(
            SendEmail(to="dan@example.com", template="welcome", name="Dan"),
            source="auth_password",
        )
        await m.h.settle()
        letters = await m.h.dead_letters("messaging_consumers", "tasks")
        failures = m.h.results("failed", "messaging_consumers.deliver")
    [failed] = m.facts("EMAIL_FAILED")
    assert str(failed["reason"]).startswith("refused 5 times: SES unreachable")
    assert len(letters) == 1 and "refused 5 times" in (letters[0].reason or "")
    assert failures  # each refusal before the last went back to the queue
