"""auth_user over HTTP: a signed-in user's sessions, recent sign-ins and security status,
kept from identity facts, each user seeing only their own."""

from __future__ import annotations

import pyotp

from bus import Key
from domains.auth_core.contracts import SignedIn, SignedOut, SignInFailed
from domains.auth_mfa.app import domain as auth_mfa
from domains.auth_mfa.contracts import MfaDisabled, MfaEnabled, RecoveryCodeUsed
from domains.auth_password.contracts import PasswordChanged, PasswordSet
from domains.auth_user.app import domain as auth_user
from tests.domains.identity import PASSWORD, identity


async def test_a_user_lists_their_sessions_and_ends_one_through_auth_core() -> None:
    async with identity(auth_user) as idp:
        _, first = await idp.member("ada@example.com", "Ada")
        second = (await idp.sign_in("ada@example.com")).json()
        _, bob = await idp.member("bob@example.com", "Bob")
        token = first["access_token"]
        before = await idp.call("GET", "/auth/user/sessions", token=token)
        ended = await idp.call("DELETE", f"/auth/sessions/{second['session_id']}", token=token)
        bobs = await idp.call("DELETE", f"/auth/sessions/{bob['session_id']}", token=token)
        await idp.h.settle()
        after = await idp.call("GET", "/auth/user/sessions", token=token)
        anonymous = await idp.call("GET", "/auth/user/sessions")
    listed = [s["session_id"] for s in before.json()["sessions"]]
    assert listed == [second["session_id"], first["session_id"]]  # newest first, no Bob's
    assert ended.status == 204 and bobs.status == 404 and anonymous.status == 401
    states = {s["session_id"]: s for s in after.json()["sessions"]}
    assert states[second["session_id"]]["status"] == "ended"
    assert states[second["session_id"]]["ended_reason"] == "logout"
    assert states[first["session_id"]]["status"] == "active"


async def test_recent_sign_ins_show_failures_newest_first_a_page_at_a_time() -> None:
    async with identity(auth_user) as idp:
        _, session = await idp.member("ada@example.com")
        await idp.sign_in("ada@example.com", "not the password")
        idp.h.clock.advance(1)  # type: ignore[attr-defined]
        await idp.sign_in("ada@example.com")
        await idp.member("bob@example.com", "Bob")
        token = session["access_token"]
        first = await idp.call("GET", "/auth/user/sign-ins?limit=2", token=token)
        rest = await idp.call(
            "GET", f"/auth/user/sign-ins?limit=2&cursor={first.json()['cursor']}", token=token
        )
        bad = [
            await idp.call("GET", f"/auth/user/sign-ins?{query}", token=token)
            for query in ("limit=0", "limit=101", "limit=many", "cursor=not-a-cursor")
        ]
    kinds = [a["kind"] for a in first.json()["items"] + rest.json()["items"]]
    assert kinds == ["signed_in", "sign_in_failed", "signed_in"]
    assert first.json()["items"][1]["reason"] == "password" and rest.json()["cursor"] is None
    assert [b.status for b in bad] == [422] * 4


async def test_security_status_follows_password_and_mfa_facts() -> None:
    async with identity(auth_mfa, auth_user) as idp:
        _, session = await idp.member("ada@example.com")
        token = session["access_token"]
        before = (await idp.call("GET", "/auth/user/security", token=token)).json()
        secret = (await idp.call("POST", "/auth/mfa/totp", token=token)).json()["secret"]
        totp = pyotp.TOTP(secret)
        await idp.call(
            "POST",
            "/auth/mfa/totp/confirmation",
            {"code": totp.at(int(idp.h.clock.now()))},
            token=token,
        )
        await idp.h.settle()
        enabled = (await idp.call("GET", "/auth/user/security", token=token)).json()
        await idp.call(
            "PUT",
            "/auth/password",
            {"current_password": PASSWORD, "new_password": "another long passphrase"},
            token=token,
        )
        await idp.h.settle()
        changed = (await idp.call("GET", "/auth/user/security", token=token)).json()
    assert before["mfa_enabled"] is False and before["password_set_at"] is not None
    assert before["password_changed_at"] is None
    assert enabled["mfa_enabled"] is True and enabled["recovery_codes_left"] == 10
    assert changed["password_changed_at"] is not None


async def test_each_fact_is_noted_once_and_deletion_erases_the_page() -> None:
    async with identity(auth_user) as idp:
        user_id, session = await idp.member("ada@example.com")
        for event_type in ("SIGNED_IN", "PASSWORD_SET"):
            [event] = idp.h.published_of(event_type)
            await idp.h.runtime.publisher.publish([event, event])  # re-delivered twice
        await idp.h.settle()
        listed = await idp.call("GET", "/auth/user/sign-ins", token=session["access_token"])
        await idp.call("DELETE", f"/users/{user_id}", token=session["access_token"])
        await idp.h.settle()
        [deleted] = idp.h.published_of("USER_DELETED")
        await idp.h.runtime.publisher.publish([deleted, deleted])
        await idp.h.settle()
        left = await idp.h.runtime.tables["auth_user"].query(
            Key("PK").eq(f"USER#{user_id}"), consistent=True
        )
    assert len(listed.json()["items"]) == 1
    assert len(idp.h.handled("auth_user.note_sign_in")) == 1
    assert len(idp.h.handled("auth_user.note_password_set")) == 1
    assert len(idp.h.handled("auth_user.erase_deleted_user")) == 1
    assert left.items == []  # the SIGNED_OUT the deletion caused left nothing behind either


async def test_every_fact_redelivered_twice_is_noted_once() -> None:
    user_id = "user-1"
    facts = [
        SignedIn(user_id=user_id, session_id="s1"),
        SignInFailed(user_id=user_id, reason="password"),
        SignedOut(user_id=user_id, session_id="s1", reason="logout"),
        PasswordSet(user_id=user_id),
        PasswordChanged(user_id=user_id, how="change"),
        MfaEnabled(user_id=user_id),
        RecoveryCodeUsed(user_id=user_id, remaining=9),
    ]
    async with identity(auth_user) as idp:
        for fact in facts:
            envelope = await idp.h.publish(fact, source="test")
            await idp.h.runtime.publisher.publish([envelope, envelope])
            await idp.h.settle()
        page = await idp.h.runtime.tables["auth_user"].query(
            Key("PK").eq(f"USER#{user_id}"), consistent=True
        )
        disabled = await idp.h.publish(MfaDisabled(user_id=user_id), source="test")
        await idp.h.runtime.publisher.publish([disabled, disabled])
        await idp.h.settle()
    kinds = sorted(i["kind"] for i in page.items if i["SK"].startswith("ACTIVITY#"))
    assert kinds == ["sign_in_failed", "signed_in", "signed_out"]
    [security] = [i for i in page.items if i["SK"] == "SECURITY"]
    assert security["recovery_codes_left"] == 9 and security["mfa_enabled"] is True
    handlers = [s.name for s in auth_user.subscriptions if s.name != "auth_user.erase_deleted_user"]
    assert len(handlers) == len(facts) + 1
    assert all(len(idp.h.handled(name)) == 1 for name in handlers)
