"""The example domains end to end in memory: sign up, the event, the welcome e-mail task."""

from __future__ import annotations

import orjson

from bus.http import HttpRequest, HttpResponse, HttpRouter
from bus.testing import Harness
from domains.messaging.app import domain as messaging
from domains.users.app import domain as users


async def call(h: Harness, method: str, path: str, body: object = None) -> HttpResponse:
    router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
    raw = b"" if body is None else orjson.dumps(body)
    return await router.handle(HttpRequest(method, path, body=raw))


async def test_sign_up_stores_the_user_and_messaging_welcomes_them() -> None:
    async with Harness(users, messaging) as h:
        created = await call(h, "POST", "/users", {"email": "Ada@Example.com", "name": "Ada"})
        await h.settle()
        user_id = created.json()["user_id"]
        stored = await h.runtime.tables["users"].get({"PK": f"USER#{user_id}", "SK": "PROFILE"})
    assert created.status == 201 and stored is not None
    assert stored["email"] == "ada@example.com" and stored["name"] == "Ada"
    assert [e.type for e in h.published] == ["USER_CREATED", "WELCOME_EMAIL_SENT", "SEND_EMAIL"]
    assert {e.correlationid for e in h.published} == {created.headers["x-correlation-id"]}
    assert [o.handler for o in h.handled()] == [
        "messaging.welcome_new_user",
        "messaging.send_email",
    ]


async def test_an_email_signs_up_once() -> None:
    async with Harness(users, messaging) as h:
        first = await call(h, "POST", "/users", {"email": "ada@example.com", "name": "Ada"})
        again = await call(h, "POST", "/users", {"email": "ADA@example.com", "name": "Ada 2"})
        await h.settle()
    assert first.status == 201 and again.status == 409
    assert again.json()["detail"] == "ada@example.com is already signed up"
    assert len(h.published_of("USER_CREATED")) == 1


async def test_a_version_1_user_created_is_upcast_for_messaging() -> None:
    async with Harness(messaging) as h:
        context = h.runtime.context("users")
        from domains.users.contracts import UserCreated

        envelope = context.envelope_for(UserCreated(user_id="u1", email="a@b.c", name="x"))
        old = envelope._replace(
            dataversion=1, data={"user_id": "u1", "email": "a@b.c", "display_name": "Old Name"}
        )
        await h.runtime.publisher.publish([old])
        await h.settle()
    [task] = h.published_of("SEND_EMAIL")
    assert task.data_dict()["name"] == "Old Name"


async def test_an_e_mail_task_naming_no_template_messaging_knows_is_dead_lettered_with_why() -> (
    None
):
    from domains.messaging.contracts import SendEmail

    async with Harness(messaging) as h:
        context = h.runtime.context("auth_password")
        envelope = context.envelope_for(SendEmail(to="a@b.cd", template="welcome", name="A"))
        unknown = envelope._replace(data={"to": "a@b.cd", "template": "promo", "name": "A"})
        await h.runtime.publisher.send([unknown])
        await h.settle()
        [letter] = await h.dead_letters("messaging", "tasks")
    assert "template" in (letter.reason or "") and h.handled("messaging.send_email") == []
