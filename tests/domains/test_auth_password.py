"""auth_password over HTTP: the set-password link from sign-up, resets that tell no one
which addresses exist, changing a password when signed in, and single-use, expiring links."""

from __future__ import annotations

from typing import Any

import pytest

from bus import ConfigurationError
from domains.auth_password.app import LINK_LIFETIME, app_url, hash_profile, hasher
from tests.domains.identity import PASSWORD, identity

NEW_PASSWORD = "another long passphrase"


async def test_sign_up_mails_a_set_password_link_that_sets_the_first_password() -> None:
    async with identity() as idp:
        user_id = await idp.sign_up("ada@example.com")
        [token] = idp.links("set-password")
        refused = await idp.sign_in("ada@example.com")  # no password yet
        answer = await idp.set_password(token)
        signed_in = await idp.sign_in("ada@example.com")
    assert refused.status == 401 and answer.status == 204 and signed_in.status == 201
    [email] = [e for e in idp.h.published_of("SEND_EMAIL") if e.data_dict()["link"]]
    assert email.data_dict()["to"] == "ada@example.com"
    assert [e.data_dict() for e in idp.h.published_of("PASSWORD_SET")] == [{"user_id": user_id}]


async def test_a_set_password_link_works_once() -> None:
    async with identity() as idp:
        await idp.sign_up("ada@example.com")
        [token] = idp.links("set-password")
        first = await idp.set_password(token)
        again = await idp.set_password(token, NEW_PASSWORD)
        old_still_works = await idp.sign_in("ada@example.com")
    assert first.status == 204 and again.status == 422
    assert again.json()["detail"] == "this link is invalid, used or expired; ask for a new one"
    assert old_still_works.status == 201


async def test_an_expired_set_password_link_is_refused() -> None:
    async with identity() as idp:
        await idp.sign_up("ada@example.com")
        [token] = idp.links("set-password")
        idp.h.clock.advance(LINK_LIFETIME["set"] + 1)  # type: ignore[attr-defined]
        answer = await idp.set_password(token)
    assert answer.status == 422 and idp.h.published_of("PASSWORD_SET") == []


async def test_a_short_password_or_unknown_field_is_422() -> None:
    async with identity() as idp:
        await idp.sign_up("ada@example.com")
        [token] = idp.links("set-password")
        short = await idp.set_password(token, "short")
        extra = await idp.call(
            "POST", "/auth/password/set", {"token": token, "password": PASSWORD, "user_id": "x"}
        )
        still_usable = await idp.set_password(token)
    assert short.status == extra.status == 422 and still_usable.status == 204


async def test_a_reset_request_is_202_for_any_address_and_mails_only_known_ones() -> None:
    async with identity() as idp:
        user_id, _ = await idp.member("ada@example.com")
        known = await idp.call(
            "POST", "/auth/password/reset-requests", {"email": "ADA@example.com"}
        )
        unknown = await idp.call(
            "POST", "/auth/password/reset-requests", {"email": "no@example.com"}
        )
        await idp.h.settle()
    assert known.status == unknown.status == 202
    assert known.body == unknown.body == b""
    assert len(idp.links("reset-password")) == 1
    [requested] = idp.h.published_of("PASSWORD_RESET_REQUESTED")
    assert requested.data_dict() == {"user_id": user_id}


async def test_a_reset_link_changes_the_password_once_and_ends_every_session() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        await idp.call("POST", "/auth/password/reset-requests", {"email": "ada@example.com"})
        await idp.h.settle()
        [token] = idp.links("reset-password")
        reset = await idp.call(
            "POST", "/auth/password/reset", {"token": token, "password": NEW_PASSWORD}
        )
        await idp.h.settle()
        reused = await idp.call(
            "POST", "/auth/password/reset", {"token": token, "password": PASSWORD}
        )
        old = await idp.sign_in("ada@example.com", PASSWORD)
        new = await idp.sign_in("ada@example.com", NEW_PASSWORD)
        refreshed = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
    assert reset.status == 204 and reused.status == 422
    assert old.status == 401 and new.status == 201 and refreshed.status == 401
    [changed] = idp.h.published_of("PASSWORD_CHANGED")
    assert changed.data_dict() == {"user_id": user_id, "how": "reset"}
    [signed_out] = idp.h.published_of("SIGNED_OUT")
    assert signed_out.data_dict()["reason"] == "password_changed"


async def test_an_expired_reset_link_is_refused_and_a_set_link_cannot_reset() -> None:
    async with identity() as idp:
        await idp.member("ada@example.com")
        [set_token] = idp.links("set-password")
        await idp.call("POST", "/auth/password/reset-requests", {"email": "ada@example.com"})
        await idp.h.settle()
        [token] = idp.links("reset-password")
        idp.h.clock.advance(LINK_LIFETIME["reset"] + 1)  # type: ignore[attr-defined]
        expired = await idp.call(
            "POST", "/auth/password/reset", {"token": token, "password": NEW_PASSWORD}
        )
        wrong_kind = await idp.call(
            "POST", "/auth/password/reset", {"token": set_token, "password": NEW_PASSWORD}
        )
    assert expired.status == wrong_kind.status == 422
    assert idp.h.published_of("PASSWORD_CHANGED") == []


async def test_a_signed_in_user_changes_their_password_with_the_current_one() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        token = session["access_token"]
        wrong = await idp.call(
            "PUT",
            "/auth/password",
            {"current_password": "not the password", "new_password": NEW_PASSWORD},
            token=token,
        )
        anonymous = await idp.call(
            "PUT", "/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        changed = await idp.call(
            "PUT",
            "/auth/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            token=token,
        )
        await idp.h.settle()
        signed_in = await idp.sign_in("ada@example.com", NEW_PASSWORD)
    assert wrong.status == 422 and anonymous.status == 401 and changed.status == 204
    assert signed_in.status == 201
    [event] = idp.h.published_of("PASSWORD_CHANGED")
    assert event.data_dict() == {"user_id": user_id, "how": "change"}


async def test_the_password_check_is_not_on_the_public_gateway() -> None:
    async with identity() as idp:
        await idp.member("ada@example.com")
        answer = await idp.call(
            "POST",
            "/internal/auth/password/verifications",
            {"email": "ada@example.com", "password": PASSWORD},
        )
    assert answer.status == 404


async def test_a_deleted_user_loses_their_credential_and_links() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        await idp.call("POST", "/auth/password/reset-requests", {"email": "ada@example.com"})
        await idp.h.settle()
        [token] = idp.links("reset-password")
        await idp.call("DELETE", f"/users/{user_id}", token=session["access_token"])
        await idp.h.settle()
        reset = await idp.call(
            "POST", "/auth/password/reset", {"token": token, "password": NEW_PASSWORD}
        )
        signed_in = await idp.sign_in("ada@example.com")
        table = idp.h.runtime.tables["auth_password"]
        leftover = await table.get({"PK": f"USER#{user_id}", "SK": "CREDENTIAL"})
    assert reset.status == 422 and signed_in.status == 401 and leftover is None


async def test_each_auth_password_handler_runs_once_when_its_event_arrives_three_times() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        [created] = idp.h.published_of("USER_CREATED")
        await idp.h.runtime.publisher.publish([created, created])
        await idp.call("DELETE", f"/users/{user_id}", token=session["access_token"])
        await idp.h.settle()
        [deleted] = idp.h.published_of("USER_DELETED")
        await idp.h.runtime.publisher.publish([deleted, deleted])
        await idp.h.settle()
    assert len(idp.links("set-password")) == 1
    assert len(idp.h.handled("auth_password.invite_to_set_password")) == 1
    assert len(idp.h.handled("auth_password.forget_account")) == 1
    assert len(idp.h.handled("messaging_consumers.welcome_new_user")) == 1


async def test_an_e_mail_task_delivered_three_times_is_sent_once() -> None:
    async with identity() as idp:
        await idp.sign_up("ada@example.com")
        [task] = [e for e in idp.h.published_of("SEND_EMAIL") if e.data_dict()["link"]]
        await idp.h.runtime.publisher.send([task, task])
        await idp.h.settle()
    assert (
        len(idp.h.handled("messaging_consumers.deliver")) == 2
    )  # the welcome and the link, once each


async def stored_hash(idp: Any, user_id: str) -> str:
    table = idp.h.runtime.tables["auth_password"]
    credential = await table.get({"PK": f"USER#{user_id}", "SK": "CREDENTIAL"})
    return str(credential["hash"])


async def test_a_password_is_hashed_with_rfc_9106_low_memory_argon2id_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TCTF_PASSWORD_HASH_PROFILE", raising=False)
    async with identity() as idp:
        user_id, _ = await idp.member("ada@example.com")
        stored = await stored_hash(idp, user_id)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_the_hash_profile_is_configurable_and_stays_argon2id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TCTF_PASSWORD_HASH_PROFILE", "CHEAPEST")
    async with identity() as idp:
        user_id, _ = await idp.member("ada@example.com")
        stored = await stored_hash(idp, user_id)
        # A hash made with another profile still verifies: its parameters travel with it.
        monkeypatch.setenv("TCTF_PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY")
        signed_in = await idp.sign_in("ada@example.com")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$") and signed_in.status == 201


def test_an_unknown_hash_profile_is_refused_with_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TCTF_PASSWORD_HASH_PROFILE", "FASTEST")
    with pytest.raises(ConfigurationError, match="'FASTEST'; one of RFC_9106_LOW_MEMORY"):
        hasher()


def test_a_deployed_function_refuses_the_test_only_hash_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TCTF_PASSWORD_HASH_PROFILE", "CHEAPEST")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tctf-prod-auth_password")
    with pytest.raises(ConfigurationError, match="CHEAPEST is for test runs only"):
        hasher()
    monkeypatch.setenv("TCTF_PASSWORD_HASH_PROFILE", "RFC_9106_HIGH_MEMORY")
    assert hash_profile() == "RFC_9106_HIGH_MEMORY"


def test_a_deployed_function_refuses_to_link_to_localhost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TCTF_APP_URL", raising=False)
    assert app_url() == "http://localhost:8000"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tctf-prod-auth_password")
    with pytest.raises(ConfigurationError, match=r"TCTF_APP_URL is not set.*app_url"):
        app_url()
    monkeypatch.setenv("TCTF_APP_URL", "https://app.example.com/")
    assert app_url() == "https://app.example.com"
