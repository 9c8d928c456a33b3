"""Every e-mail a fact calls for, end to end over HTTP and the in-memory transport: written in
the user's language, kept by the local mailer, readable at `GET /mail`, and EMAIL_SENT only
once the mailer accepted it."""

from __future__ import annotations

from typing import Any

import orjson

from domains.achievements.contracts import AchievementUnlocked
from domains.auth_core.contracts import AccountLocked
from tests.domains.mail import Mail, mail_platform


def sent(m: Mail) -> list[dict[str, Any]]:
    return m.facts("EMAIL_SENT")


async def test_sign_up_welcomes_the_user_and_invites_them_to_choose_a_password() -> None:
    async with mail_platform() as m:
        created = await m.sign_up_with({"email": "ada@example.com", "name": "Ada"})
        user_id = created.json()["user_id"]
        letters = m.letters("ada@example.com")
        read = await m.read_mailbox("to=ADA@example.com")
    assert created.status == 201
    subjects = sorted(letter["subject"] for letter in letters)
    assert subjects == ["Choose your password", "Welcome, Ada"]
    [invite] = [letter for letter in letters if letter["subject"] == "Choose your password"]
    assert "#token=" in invite["text"]  # the mailbox keeps the whole letter, link and all
    facts = sent(m)
    assert sorted(f["template"] for f in facts) == ["set-password", "welcome"]
    assert {f["message_id"] for f in facts} == {letter["message_id"] for letter in letters}
    welcome = next(f for f in facts if f["template"] == "welcome")
    assert welcome["user_id"] == user_id and welcome["to"] == "ada@example.com"
    assert read.status == 200
    assert [i["subject"] for i in read.json()["items"]] == [i["subject"] for i in letters]


async def test_a_user_is_written_to_in_their_language_and_an_unknown_one_reads_english() -> None:
    async with mail_platform() as m:
        await m.sign_up_with({"email": "grete@example.com", "name": "Grete", "locale": "de-AT"})
        await m.sign_up_with({"email": "amelie@example.com", "name": "Am\u00e9lie", "locale": "fr"})
        grete = m.letters("grete@example.com")
        amelie = m.letters("amelie@example.com")
    assert "Willkommen, Grete" in [letter["subject"] for letter in grete]
    assert "Welcome, Am\u00e9lie" in [letter["subject"] for letter in amelie]


async def test_a_locale_that_is_no_language_tag_is_refused_at_sign_up() -> None:
    async with mail_platform() as m:
        answer = await m.sign_up_with(
            {"email": "ada@example.com", "name": "Ada", "locale": "en_US; drop"}
        )
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert m.h.published_of("USER_CREATED") == []


async def test_a_changed_locale_is_used_for_the_next_e_mail() -> None:
    async with mail_platform() as m:
        user_id, token = await m.customer("ada@example.com")
        changed = await m.call("PATCH", f"/users/{user_id}", {"locale": "de"}, token=token)
        await m.h.settle()
        await m.h.publish(
            AchievementUnlocked(
                user_id=user_id, achievement_id="first", title="Erster", unlocked_at="2026-01-01"
            ),
            source="achievements",
        )
        await m.h.settle()
    assert changed.status == 200 and changed.json()["locale"] == "de"
    assert m.letters("ada@example.com")[-1]["subject"] == "Erfolg freigeschaltet: Erster"


async def test_a_paid_invoice_gets_a_receipt_and_a_failed_payment_a_dunning_notice() -> None:
    async with mail_platform() as m:
        ada, ada_token = await m.customer("ada@example.com")
        bob, bob_token = await m.customer("bob@example.com", "pm_card_chargeDeclined")
        await m.subscribe(ada, ada_token)
        await m.subscribe(bob, bob_token)
        [paid] = m.facts("INVOICE_PAID")
        receipt = m.letters("ada@example.com")[-1]
        notice = m.letters("bob@example.com")[-1]
    assert receipt["subject"] == f"Receipt for invoice {paid['invoice_id']}"
    amount = int(paid["amount"])
    assert f"EUR {amount // 100}.{amount % 100:02d}" in receipt["text"]
    assert notice["subject"] == "Your payment failed"
    assert "We will try again on" in notice["text"]
    assert {f["template"] for f in sent(m)} >= {"receipt", "payment-failed"}


async def test_a_locked_account_and_an_achievement_are_each_told_by_e_mail() -> None:
    async with mail_platform() as m:
        user_id = await m.sign_up("ada@example.com")
        await m.h.publish(
            AccountLocked(user_id=user_id, until="2026-12-02T03:00:00Z"), source="auth_core"
        )
        await m.h.publish(
            AchievementUnlocked(
                user_id=user_id, achievement_id="first-post", title="First post", unlocked_at="x"
            ),
            source="achievements",
        )
        await m.h.settle()
        subjects = [letter["subject"] for letter in m.letters("ada@example.com")]
    assert "Your account is locked" in subjects
    assert "Achievement unlocked: First post" in subjects


async def test_a_deleted_user_is_forgotten_and_gets_no_further_mail() -> None:
    async with mail_platform() as m:
        user_id, token = await m.customer("ada@example.com")
        await m.call("DELETE", f"/users/{user_id}", token=token)
        await m.h.settle()
        before = len(m.letters("ada@example.com"))
        await m.h.publish(
            AchievementUnlocked(user_id=user_id, achievement_id="a", title="A", unlocked_at="x"),
            source="achievements",
        )
        await m.h.settle()
        [profile] = m.items(f"USER#{user_id}")
    assert len(m.letters("ada@example.com")) == before
    assert "email" not in profile and "name" not in profile and profile["deleted"] is True


async def test_the_mailbox_route_pages_and_refuses_bad_queries_with_problem_json() -> None:
    async with mail_platform() as m:
        await m.sign_up_with({"email": "ada@example.com", "name": "Ada"})
        first = await m.read_mailbox("to=ada@example.com&limit=1")
        second = await m.read_mailbox(f"to=ada@example.com&limit=1&cursor={first.json()['cursor']}")
        no_address = await m.read_mailbox("limit=1")
        not_an_address = await m.read_mailbox("to=nobody")
        bad_cursor = await m.read_mailbox("to=ada@example.com&cursor=garbage")
    assert len(first.json()["items"]) == len(second.json()["items"]) == 1
    assert first.json()["items"] != second.json()["items"]
    for answer in (no_address, not_an_address, bad_cursor):
        assert answer.status == 422, answer.json()
        assert answer.headers["content-type"] == "application/problem+json"


async def test_no_link_or_token_leaves_the_task_for_an_event_a_record_or_a_log_line(
    caplog: object,
) -> None:
    async with mail_platform() as m:
        await m.sign_up_with({"email": "ada@example.com", "name": "Ada"})
        [token] = m.links("set-password")
        events = [e for e in m.h.published if e.type != "SEND_EMAIL"]
        records = m.items("DELIVERY#") + m.items("USER#")
    assert token not in orjson.dumps([e.data_dict() for e in events]).decode()
    assert token not in orjson.dumps(records).decode()
    assert token not in str(getattr(caplog, "text", ""))


LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
OTHERS = ("192.168.1.20", "10.0.0.7", "fe80::1", "::ffff:192.168.1.20", "mailbox.sock")


async def test_the_mailbox_answers_only_on_loopback_and_refuses_other_peers_with_problem_json() -> (
    None
):
    """`tctf run --host 0.0.0.0` must not hand everyone on the network the set-password links."""
    async with mail_platform() as m:
        await m.sign_up_with({"email": "ada@example.com", "name": "Ada"})
        answers = {
            peer: await m.read_mailbox("to=ada@example.com", client=(peer, 50000))
            for peer in LOOPBACK + OTHERS
        }
    assert all(answers[peer].status == 200 for peer in LOOPBACK)
    assert answers["127.0.0.1"].json()["items"]
    for peer in OTHERS:
        refused = answers[peer]
        assert refused.status == 403, (peer, refused.json())
        assert refused.headers["content-type"] == "application/problem+json"
        assert "set-password" not in refused.body.decode() and "token" not in refused.body.decode()
