"""users over HTTP: sign-up validation and uniqueness, and profiles that answer only to
their owner (404 to anyone else)."""

from __future__ import annotations

import orjson
import pytest

from domains.auth_admin.contracts import UserDisabled, UserEnabled
from tests.asgi import asgi_request
from tests.domains.identity import identity


async def test_sign_up_answers_201_with_location_and_announces_user_created_v2() -> None:
    async with identity() as idp:
        answer = await idp.call("POST", "/users", {"email": "Ada@Example.COM", "name": "Ada"})
        await idp.h.settle()
    body = answer.json()
    assert answer.status == 201 and answer.headers["location"] == f"/users/{body['user_id']}"
    assert body["email"] == "ada@example.com" and body["plan"] == "free"
    [created] = idp.h.published_of("USER_CREATED")
    assert created.dataversion == 2
    assert created.data_dict() == {
        "user_id": body["user_id"],
        "email": "ada@example.com",
        "name": "Ada",
        "plan": "free",
        "locale": "en",
    }


@pytest.mark.parametrize(
    "second",
    ["dup@example.com", "DUP@Example.com", "dup@example.com.", "Dup@EXAMPLE.COM."],
)
async def test_an_address_signs_up_once_whatever_its_case_or_trailing_dot(second: str) -> None:
    async with identity() as idp:
        first = await idp.call("POST", "/users", {"email": "dup@example.com", "name": "One"})
        again = await idp.call("POST", "/users", {"email": second, "name": "Two"})
        await idp.h.settle()
    assert first.status == 201 and again.status == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert len(idp.h.published_of("USER_CREATED")) == 1


async def test_an_internationalised_domain_is_one_address_in_either_spelling() -> None:
    async with identity() as idp:
        first = await idp.call("POST", "/users", {"email": "kim@bücher.de", "name": "Kim"})
        again = await idp.call("POST", "/users", {"email": "kim@xn--bcher-kva.de", "name": "Kim"})
    assert first.status == 201 and first.json()["email"] == "kim@xn--bcher-kva.de"
    assert again.status == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nul\x00@example.com", "name": "Ada"}, "email"),
        ({"email": "ada@example.com\r\nBcc: x@y.z", "name": "Ada"}, "email"),
        ({"email": "ada@example.com", "name": "\x1b[31mAda\x1b[0m"}, "name"),
        ({"email": "ada@example.com", "name": "Ada\r\nLovelace"}, "name"),
        ({"email": "ada@example.com", "name": "   "}, "name"),
        ({"email": "ada@example.com", "name": "Ada", "user_id": "u-admin"}, "user_id"),
        ({"email": "ada@example.com", "name": "Ada", "is_admin": True}, "is_admin"),
        ({"email": "ada@example.com", "name": "Ada", "plan": "platinum"}, "plan"),
        ({"email": "not-an-address", "name": "Ada"}, "email"),
        ({"name": "Ada"}, "email"),
        ({"email": 7, "name": "Ada"}, "email"),
    ],
)
async def test_bad_sign_ups_are_422_problems_naming_the_field(body: object, field: str) -> None:
    async with identity() as idp:
        answer = await idp.call("POST", "/users", body)
        await idp.h.settle()
    assert answer.status == 422 and answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert idp.h.published == []


async def test_malformed_json_is_400_and_a_name_is_trimmed() -> None:
    async with identity() as idp:
        broken = await idp.call("POST", "/users", raw=b'{"email": ')
        trimmed = await idp.call("POST", "/users", {"email": "ada@example.com", "name": " Ada "})
    assert broken.status == 400
    assert trimmed.status == 201 and trimmed.json()["name"] == "Ada"


async def test_a_user_reads_updates_and_deletes_their_own_profile() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        token = session["access_token"]
        read = await idp.call("GET", f"/users/{user_id}", token=token)
        changed = await idp.call(
            "PATCH", f"/users/{user_id}", {"name": "Ada L.", "plan": "pro"}, token=token
        )
        await idp.h.settle()
        deleted = await idp.call("DELETE", f"/users/{user_id}", token=token)
        await idp.h.settle()
        gone = await idp.call("GET", f"/users/{user_id}", token=token)
        again = await idp.call("POST", "/users", {"email": "ada@example.com", "name": "Ada"})
    assert read.status == 200 and read.json()["email"] == "ada@example.com"
    assert changed.status == 200 and changed.json()["plan"] == "pro"
    [updated] = idp.h.published_of("USER_UPDATED")
    assert updated.data_dict()["name"] == "Ada L."
    assert deleted.status == 204 and gone.status == 404
    assert [e.data_dict() for e in idp.h.published_of("USER_DELETED")] == [{"user_id": user_id}]
    assert again.status == 201  # a deleted account frees its address


async def test_profile_changes_are_validated_like_sign_up() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        token = session["access_token"]
        blank = await idp.call("PATCH", f"/users/{user_id}", {"name": " "}, token=token)
        smuggled = await idp.call("PATCH", f"/users/{user_id}", {"email": "b@c.de"}, token=token)
    assert blank.status == smuggled.status == 422


async def test_user_a_cannot_read_change_or_delete_user_b() -> None:
    async with identity() as idp:
        ada, ada_session = await idp.member("ada@example.com", "Ada")
        bob, _ = await idp.member("bob@example.com", "Bob")
        token = ada_session["access_token"]
        answers = [
            await idp.call("GET", f"/users/{bob}", token=token),
            await idp.call("PATCH", f"/users/{bob}", {"name": "Mallory"}, token=token),
            await idp.call("DELETE", f"/users/{bob}", token=token),
            await idp.call("GET", "/users/no-such-user", token=token),
        ]
        anonymous = await idp.call("GET", f"/users/{ada}")
        await idp.h.settle()
    assert [a.status for a in answers] == [404, 404, 404, 404]
    assert answers[0].json()["detail"] == answers[3].json()["detail"].replace("no-such-user", bob)
    assert anonymous.status == 401
    assert idp.h.published_of("USER_UPDATED") == idp.h.published_of("USER_DELETED") == []


async def test_disable_and_enable_set_the_status_and_each_handler_runs_once_per_event() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        disabled = await idp.h.publish(UserDisabled(user_id=user_id), source="auth_admin")
        await idp.h.runtime.publisher.publish([disabled, disabled])  # re-delivered twice
        await idp.h.settle()
        signed_out = await idp.call("GET", f"/users/{user_id}", token=session["access_token"])
        enabled = await idp.h.publish(UserEnabled(user_id=user_id), source="auth_admin")
        await idp.h.runtime.publisher.publish([enabled, enabled])
        await idp.h.settle()
        active = await idp.call("GET", f"/users/{user_id}", token=session["access_token"])
    assert signed_out.json()["status"] == "disabled" and active.json()["status"] == "active"
    assert len(idp.h.handled("users.mark_disabled")) == 1
    assert len(idp.h.handled("users.mark_enabled")) == 1


async def test_a_sign_up_with_an_oversized_correlation_id_is_announced_under_a_fresh_one() -> None:
    async with identity() as idp:
        payload = orjson.dumps({"email": "ada@example.com", "name": "Ada"})
        headers = [(b"content-type", b"application/json"), (b"x-correlation-id", b"c" * 5000)]
        answer = await asgi_request(idp.client.app, "POST", "/users", payload, headers)
        await idp.h.settle()
    fresh = answer.headers["x-correlation-id"]
    assert answer.status == 201 and len(fresh) <= 256
    [created] = idp.h.published_of("USER_CREATED")
    assert created.correlationid == fresh
    assert idp.h.runtime.outbox_dead_letters.get("users", []) == []
    assert idp.links("set-password")
