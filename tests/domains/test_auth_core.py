"""auth_core over HTTP: sign-in, the lockout, refresh-token rotation and reuse, sign-out,
revocation on account events, signed tokens and key rotation at the gateway."""

from __future__ import annotations

import base64
import json
import time
from statistics import median

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from adapters.http.authorizer import JWKS_MAX_AGE
from bus import Key
from domains.auth_admin.contracts import UserDisabled, UserEnabled
from domains.auth_core.app import (
    ACCESS_TOKEN_LIFETIME,
    LOCKOUT_DURATION,
    LOCKOUT_THRESHOLD,
    signing_keys,
)
from tests.domains.identity import PASSWORD, identity


async def test_sign_in_returns_a_signed_access_token_and_a_refresh_token() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        jwks = await idp.call("GET", "/auth/jwks.json")
        profile = await idp.call("GET", f"/users/{user_id}", token=session["access_token"])
    assert session["token_type"] == "Bearer" and session["expires_in"] == ACCESS_TOKEN_LIFETIME
    header = jwt.decode(session["access_token"], ECKey.import_key(jwks.json()["keys"][-1]))
    assert header.header["kid"] == signing_keys().active and header.header["alg"] == "ES256"
    assert header.claims["sub"] == user_id and header.claims["iss"] == "urn:tctf:auth"
    assert all("d" not in key for key in jwks.json()["keys"])  # public parts only
    assert profile.status == 200
    [signed_in] = idp.h.published_of("SIGNED_IN")
    assert signed_in.data_dict() == {"user_id": user_id, "session_id": session["session_id"]}


async def test_a_wrong_password_and_an_unknown_address_get_the_same_401() -> None:
    async with identity() as idp:
        user_id, _ = await idp.member("ada@example.com")
        wrong = await idp.sign_in("ada@example.com", "not the password")
        unknown = await idp.sign_in("nobody@example.com", "not the password")
        malformed = await idp.sign_in("not an address", "x")
    assert wrong.status == unknown.status == malformed.status == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == malformed.json()["detail"]
    [failed] = idp.h.published_of("SIGN_IN_FAILED")  # unknown addresses leave no event
    assert failed.data_dict() == {"user_id": user_id, "reason": "password"}


async def test_an_unknown_address_costs_the_time_of_a_wrong_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TCTF_PASSWORD_HASH_PROFILE", raising=False)  # production cost
    async with identity() as idp:
        await idp.member("ada@example.com")

        async def timed(email: str) -> float:
            start = time.perf_counter()
            await idp.call("POST", "/auth/sessions", {"email": email, "password": "wrong!"})
            return time.perf_counter() - start

        known = median([await timed("ada@example.com") for _ in range(3)])
        unknown = median([await timed(f"nobody{i}@example.com") for i in range(3)])
    # Both verify one argon2 hash; without the dummy hash an unknown address answers in
    # microseconds, a hundredfold faster.
    assert unknown > known / 4


async def test_five_failures_lock_the_address_until_the_lock_expires() -> None:
    async with identity() as idp:
        user_id, _ = await idp.member("ada@example.com")
        failures = [await idp.sign_in("ada@example.com", "wrong") for _ in range(LOCKOUT_THRESHOLD)]
        locked = await idp.sign_in("ada@example.com", PASSWORD)
        idp.h.clock.advance(LOCKOUT_DURATION - 1)  # type: ignore[attr-defined]
        still_locked = await idp.sign_in("ada@example.com", PASSWORD)
        idp.h.clock.advance(2)  # type: ignore[attr-defined]
        unlocked = await idp.sign_in("ada@example.com", PASSWORD)
    assert [f.status for f in failures] == [401] * LOCKOUT_THRESHOLD
    assert locked.status == still_locked.status == 429
    assert int(locked.headers["retry-after"]) == LOCKOUT_DURATION
    assert unlocked.status == 201
    [event] = idp.h.published_of("ACCOUNT_LOCKED")
    assert event.data_dict()["user_id"] == user_id


async def test_failures_spread_beyond_fifteen_minutes_do_not_lock() -> None:
    async with identity() as idp:
        await idp.member("ada@example.com")
        for _ in range(LOCKOUT_THRESHOLD):
            await idp.sign_in("ada@example.com", "wrong")
            idp.h.clock.advance(4 * 60)  # type: ignore[attr-defined]
        answer = await idp.sign_in("ada@example.com", PASSWORD)
    assert answer.status == 201 and idp.h.published_of("ACCOUNT_LOCKED") == []


async def test_an_unknown_address_locks_too_so_the_lock_tells_nothing() -> None:
    async with identity() as idp:
        for _ in range(LOCKOUT_THRESHOLD):
            await idp.sign_in("ghost@example.com", "wrong")
        answer = await idp.sign_in("ghost@example.com", "wrong")
    assert answer.status == 429 and idp.h.published_of("ACCOUNT_LOCKED") == []


async def test_a_refresh_token_is_rotated_on_use() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        first = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
        second = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": first.json()["refresh_token"]}
        )
        profile = await idp.call("GET", f"/users/{user_id}", token=second.json()["access_token"])
    assert first.status == second.status == 200 and profile.status == 200
    assert len({session["refresh_token"], first.json()["refresh_token"]}) == 2
    assert first.json()["session_id"] == session["session_id"]


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family() -> None:
    async with identity() as idp:
        _, session = await idp.member("ada@example.com")
        rotated = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
        stolen = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
        current = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": rotated.json()["refresh_token"]}
        )
        await idp.h.settle()
    assert rotated.status == 200 and stolen.status == 401 and current.status == 401
    [signed_out] = idp.h.published_of("SIGNED_OUT")
    assert signed_out.data_dict()["reason"] == "refresh_token_reused"


async def test_an_unknown_or_expired_refresh_token_is_401() -> None:
    async with identity() as idp:
        _, session = await idp.member("ada@example.com")
        unknown = await idp.call("POST", "/auth/sessions/refresh", {"refresh_token": "made-up"})
        idp.h.clock.advance(31 * 24 * 3600)  # type: ignore[attr-defined]
        expired = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
    assert unknown.status == expired.status == 401


async def test_sign_out_ends_the_session_and_another_users_session_is_404() -> None:
    async with identity() as idp:
        _, ada = await idp.member("ada@example.com", "Ada")
        _, bob = await idp.member("bob@example.com", "Bob")
        bobs = await idp.call(
            "DELETE", f"/auth/sessions/{bob['session_id']}", token=ada["access_token"]
        )
        own = await idp.call(
            "DELETE", f"/auth/sessions/{ada['session_id']}", token=ada["access_token"]
        )
        await idp.h.settle()
        refresh_ada = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": ada["refresh_token"]}
        )
        refresh_bob = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": bob["refresh_token"]}
        )
        anonymous = await idp.call("DELETE", f"/auth/sessions/{ada['session_id']}")
    assert bobs.status == 404 and own.status == 204
    assert refresh_ada.status == 401 and refresh_bob.status == 200 and anonymous.status == 401
    [signed_out] = idp.h.published_of("SIGNED_OUT")
    assert signed_out.data_dict()["reason"] == "logout"


async def test_a_disabled_user_is_signed_out_everywhere_and_refused_until_enabled() -> None:
    async with identity() as idp:
        user_id, first = await idp.member("ada@example.com")
        second = (await idp.sign_in("ada@example.com")).json()
        disabled = await idp.h.publish(UserDisabled(user_id=user_id), source="auth_admin")
        await idp.h.runtime.publisher.publish([disabled, disabled])  # re-delivered twice
        await idp.h.settle()
        refused = await idp.sign_in("ada@example.com")
        refreshes = [
            await idp.call("POST", "/auth/sessions/refresh", {"refresh_token": s["refresh_token"]})
            for s in (first, second)
        ]
        enabled = await idp.h.publish(UserEnabled(user_id=user_id), source="auth_admin")
        await idp.h.runtime.publisher.publish([enabled, enabled])
        await idp.h.settle()
        again = await idp.sign_in("ada@example.com")
    assert refused.status == 401 and [r.status for r in refreshes] == [401, 401]
    assert again.status == 201
    reasons = [e.data_dict()["reason"] for e in idp.h.published_of("SIGNED_OUT")]
    assert reasons == ["user_disabled", "user_disabled"]
    assert len(idp.h.handled("auth_core.end_sessions_of_disabled_user")) == 1
    assert len(idp.h.handled("auth_core.allow_enabled_user")) == 1


async def test_a_password_change_or_deletion_ends_every_session_once_per_event() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        await idp.call(
            "PUT",
            "/auth/password",
            {"current_password": PASSWORD, "new_password": "yet another passphrase"},
            token=session["access_token"],
        )
        await idp.h.settle()
        [changed] = idp.h.published_of("PASSWORD_CHANGED")
        await idp.h.runtime.publisher.publish([changed, changed])
        await idp.h.settle()
        second = (await idp.sign_in("ada@example.com", "yet another passphrase")).json()
        await idp.call("DELETE", f"/users/{user_id}", token=second["access_token"])
        await idp.h.settle()
        [deleted] = idp.h.published_of("USER_DELETED")
        await idp.h.runtime.publisher.publish([deleted, deleted])
        await idp.h.settle()
        refresh = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": second["refresh_token"]}
        )
        table = idp.h.runtime.tables["auth_core"]
        left = await table.query(Key("PK").eq(f"USER#{user_id}"), consistent=True)
    assert refresh.status == 401 and left.items == []
    assert len(idp.h.handled("auth_core.end_sessions_on_password_change")) == 1
    assert len(idp.h.handled("auth_core.erase_sessions_of_deleted_user")) == 1
    reasons = [e.data_dict()["reason"] for e in idp.h.published_of("SIGNED_OUT")]
    assert reasons == ["password_changed", "user_deleted"]


async def test_the_gateway_refuses_expired_forged_and_foreign_tokens() -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        policy = idp.h.topology.token_policy
        assert policy is not None
        now = int(idp.h.clock.now())
        claims = {"iss": policy.issuer, "aud": policy.audience, "sub": user_id, "exp": now + 60}
        stranger = ECKey.generate_key("P-256", auto_kid=True)
        forged = jwt.encode({"alg": "ES256", "kid": signing_keys().active}, claims, stranger)
        foreign = signing_keys().sign({**claims, "aud": "someone-else"})
        unsigned = (
            ".".join(
                base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                for part in ({"alg": "none", "kid": signing_keys().active}, claims)
            )
            + "."
        )
        answers = [
            await idp.call("GET", f"/users/{user_id}", token=t)
            for t in (forged, foreign, unsigned, "not.a.jwt")
        ]
        idp.h.clock.advance(ACCESS_TOKEN_LIFETIME + 1)  # type: ignore[attr-defined]
        expired = await idp.call("GET", f"/users/{user_id}", token=session["access_token"])
    assert [a.status for a in answers] == [401, 401, 401, 401] and expired.status == 401


async def test_a_rotated_key_keeps_old_tokens_valid_until_it_is_retired() -> None:
    async with identity() as idp:
        user_id, before = await idp.member("ada@example.com")
        old_kid = signing_keys().active
        signing_keys().rotate()
        after = (await idp.sign_in("ada@example.com")).json()
        both = [
            await idp.call("GET", f"/users/{user_id}", token=s["access_token"])
            for s in (before, after)
        ]
        signing_keys().retire(old_kid)
        idp.h.clock.advance(JWKS_MAX_AGE + 1)  # type: ignore[attr-defined]
        retired = await idp.call("GET", f"/users/{user_id}", token=before["access_token"])
        current = await idp.call("GET", f"/users/{user_id}", token=after["access_token"])
    assert [a.status for a in both] == [200, 200]
    assert retired.status == 401 and current.status == 200


async def test_the_lockout_holds_at_any_fraction_of_a_second() -> None:
    """A table gives numbers back as int or Decimal: the lock must not compare them with a
    float clock's reading in a way that fails."""
    async with identity() as idp:
        await idp.member("ada@example.com")
        idp.h.clock.advance(0.375)  # type: ignore[attr-defined]
        for _ in range(LOCKOUT_THRESHOLD):
            await idp.sign_in("ada@example.com", "wrong")
            idp.h.clock.advance(1.25)  # type: ignore[attr-defined]
        locked = await idp.sign_in("ada@example.com", PASSWORD)
    assert locked.status == 429 and int(locked.headers["retry-after"]) > 0


async def test_failures_are_kept_under_a_digest_of_whatever_address_was_typed() -> None:
    """DynamoDB refuses a partition key over 2 KiB, and strangers' typos are nobody's data."""
    async with identity() as idp:
        answers = [await idp.sign_in("€" * 1024, "wrong") for _ in range(2)]
        await idp.sign_in("someone@example.com", "wrong")
        table = idp.h.runtime.tables["auth_core"]
        keys = [item["PK"] for item in table.scan()]  # type: ignore[attr-defined]
    assert [a.status for a in answers] == [401, 401]
    assert len(keys) == 2 and all(len(k) == len("LOGIN#") + 64 for k in keys)
    assert not [k for k in keys if "example" in k]
