"""auth_mfa over HTTP: enrol a TOTP authenticator, confirm it, sign in in two steps, use
recovery codes once, turn MFA off with a code, and forget it all when the user is erased."""

from __future__ import annotations

from typing import Any

import pyotp

from bus import Key
from domains.auth_core.app import LOCKOUT_THRESHOLD, MFA_CHALLENGE_LIFETIME
from domains.auth_mfa.app import LOCKOUT_THRESHOLD as MFA_LOCKOUT_THRESHOLD
from domains.auth_mfa.app import LOCKOUT_WINDOW as MFA_LOCKOUT_WINDOW
from domains.auth_mfa.app import domain as auth_mfa
from tests.domains.identity import Identity, identity

STEP = 30


def _code(idp: Identity, secret: str, at: float | None = None) -> str:
    return pyotp.TOTP(secret).at(int(idp.h.clock.now() if at is None else at))


async def _enrolled(idp: Identity, token: str) -> tuple[str, list[str]]:
    """Enrol and confirm an authenticator: its secret and the recovery codes."""
    enrolment = await idp.call("POST", "/auth/mfa/totp", token=token)
    assert enrolment.status == 201, enrolment.json()
    secret = enrolment.json()["secret"]
    confirmed = await idp.call(
        "POST", "/auth/mfa/totp/confirmation", {"code": _code(idp, secret)}, token=token
    )
    assert confirmed.status == 200, confirmed.json()
    await idp.h.settle()
    idp.h.clock.advance(STEP)  # type: ignore[attr-defined]
    return secret, confirmed.json()["recovery_codes"]


async def _second_step(idp: Identity, challenge: str, **factor: str) -> Any:
    answer = await idp.call("POST", "/auth/sessions/mfa", {"mfa_challenge": challenge, **factor})
    await idp.h.settle()
    return answer


async def test_enrolment_gives_a_secret_and_an_otpauth_uri_and_confirmation_enables_mfa() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        enrolment = (await idp.call("POST", "/auth/mfa/totp", token=session["access_token"])).json()
        wrong = await idp.call(
            "POST", "/auth/mfa/totp/confirmation", {"code": "000000"}, token=session["access_token"]
        )
        _, codes = await _enrolled(idp, session["access_token"])
        again = await idp.call("POST", "/auth/mfa/totp", token=session["access_token"])
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/TCTF:")
    assert f"secret={enrolment['secret']}" in enrolment["otpauth_uri"]
    assert wrong.status == 422 and again.status == 409
    assert len(codes) == len(set(codes)) == 10
    [enabled] = idp.h.published_of("MFA_ENABLED")
    assert enabled.data_dict() == {"user_id": user_id}


async def test_sign_in_with_mfa_answers_a_challenge_then_a_session_for_the_code() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        secret, _ = await _enrolled(idp, session["access_token"])
        first = await idp.sign_in("ada@example.com")
        second = await _second_step(idp, first.json()["mfa_challenge"], code=_code(idp, secret))
        profile = await idp.call("GET", f"/users/{user_id}", token=second.json()["access_token"])
        spent = await _second_step(idp, first.json()["mfa_challenge"], code=_code(idp, secret))
    assert first.status == 201 and "access_token" not in first.json()
    assert first.json()["expires_in"] == MFA_CHALLENGE_LIFETIME
    assert second.status == 201 and profile.status == 200
    assert spent.status == 401  # a challenge opens one session
    assert len(idp.h.published_of("SIGNED_IN")) == 2


async def test_a_wrong_code_is_401_and_counts_toward_the_lockout() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        secret, _ = await _enrolled(idp, session["access_token"])
        challenge = (await idp.sign_in("ada@example.com")).json()["mfa_challenge"]
        wrong = [
            await _second_step(idp, challenge, code="123456") for _ in range(LOCKOUT_THRESHOLD)
        ]
        locked = await _second_step(idp, challenge, code=_code(idp, secret))
        password_too = await idp.sign_in("ada@example.com")
    assert [w.status for w in wrong] == [401] * LOCKOUT_THRESHOLD
    assert locked.status == password_too.status == 429
    reasons = [e.data_dict()["reason"] for e in idp.h.published_of("SIGN_IN_FAILED")]
    assert reasons == ["mfa"] * LOCKOUT_THRESHOLD
    [locked_event] = idp.h.published_of("ACCOUNT_LOCKED")
    assert locked_event.data_dict()["user_id"] == user_id


async def test_a_code_that_passed_cannot_be_replayed_within_its_window() -> None:
    async with identity(auth_mfa) as idp:
        _, session = await idp.member("ada@example.com")
        secret, _ = await _enrolled(idp, session["access_token"])
        code = _code(idp, secret)
        first = (await idp.sign_in("ada@example.com")).json()["mfa_challenge"]
        second = (await idp.sign_in("ada@example.com")).json()["mfa_challenge"]
        used = await _second_step(idp, first, code=code)
        replayed = await _second_step(idp, second, code=code)
        idp.h.clock.advance(STEP)  # type: ignore[attr-defined]
        fresh = await _second_step(idp, second, code=_code(idp, secret))
        old_step = await _second_step(
            idp,
            (await idp.sign_in("ada@example.com")).json()["mfa_challenge"],
            code=_code(idp, secret, idp.h.clock.now() - STEP),
        )
    assert used.status == 201 and replayed.status == 401 and fresh.status == 201
    assert old_step.status == 401  # older than the last step used


async def test_an_expired_challenge_is_401() -> None:
    async with identity(auth_mfa) as idp:
        _, session = await idp.member("ada@example.com")
        secret, _ = await _enrolled(idp, session["access_token"])
        challenge = (await idp.sign_in("ada@example.com")).json()["mfa_challenge"]
        idp.h.clock.advance(MFA_CHALLENGE_LIFETIME)  # type: ignore[attr-defined]
        expired = await _second_step(idp, challenge, code=_code(idp, secret))
        made_up = await _second_step(idp, "made-up", code=_code(idp, secret))
    assert expired.status == made_up.status == 401
    assert idp.h.published_of("SIGN_IN_FAILED") == []  # no code was checked


async def test_a_recovery_code_signs_in_once() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        _, codes = await _enrolled(idp, session["access_token"])
        used = await _second_step(
            idp,
            (await idp.sign_in("ada@example.com")).json()["mfa_challenge"],
            recovery_code=codes[3].upper().replace("-", ""),
        )
        reused = await _second_step(
            idp,
            (await idp.sign_in("ada@example.com")).json()["mfa_challenge"],
            recovery_code=codes[3],
        )
        both = await idp.call(
            "POST",
            "/auth/sessions/mfa",
            {"mfa_challenge": "x", "code": "123456", "recovery_code": codes[4]},
        )
    assert used.status == 201 and reused.status == 401 and both.status == 422
    [spent] = idp.h.published_of("RECOVERY_CODE_USED")
    assert spent.data_dict() == {"user_id": user_id, "remaining": 9}


async def test_disabling_mfa_needs_a_code_and_sign_in_is_one_step_again() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        secret, _ = await _enrolled(idp, session["access_token"])
        token = session["access_token"]
        without = await idp.call("POST", "/auth/mfa/totp/removal", {}, token=token)
        wrong = await idp.call("POST", "/auth/mfa/totp/removal", {"code": "000000"}, token=token)
        anonymous = await idp.call("POST", "/auth/mfa/totp/removal", {"code": _code(idp, secret)})
        removed = await idp.call(
            "POST", "/auth/mfa/totp/removal", {"code": _code(idp, secret)}, token=token
        )
        await idp.h.settle()
        one_step = await idp.sign_in("ada@example.com")
    assert without.status == wrong.status == 422 and anonymous.status == 401
    assert removed.status == 204 and "access_token" in one_step.json()
    [disabled] = idp.h.published_of("MFA_DISABLED")
    assert disabled.data_dict() == {"user_id": user_id}


async def test_wrong_codes_lock_turning_mfa_off_for_a_while() -> None:
    async with identity(auth_mfa) as idp:
        _, session = await idp.member("ada@example.com")
        secret, _ = await _enrolled(idp, session["access_token"])
        token = session["access_token"]
        wrong = [
            await idp.call("POST", "/auth/mfa/totp/removal", {"code": "000000"}, token=token)
            for _ in range(MFA_LOCKOUT_THRESHOLD)
        ]
        locked = await idp.call(
            "POST", "/auth/mfa/totp/removal", {"code": _code(idp, secret)}, token=token
        )
        idp.h.clock.advance(MFA_LOCKOUT_WINDOW)  # type: ignore[attr-defined]
        refreshed = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
        later = await idp.call(
            "POST",
            "/auth/mfa/totp/removal",
            {"code": _code(idp, secret)},
            token=refreshed.json()["access_token"],
        )
    assert [w.status for w in wrong] == [422] * MFA_LOCKOUT_THRESHOLD
    assert locked.status == 429 and later.status == 204


async def test_the_verification_route_is_internal() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        body = {"user_id": user_id, "code": "123456"}
        anonymous = await idp.call("POST", "/internal/auth/mfa/verifications", body)
        signed_in = await idp.call(
            "POST", "/internal/auth/mfa/verifications", body, token=session["access_token"]
        )
    assert anonymous.status == signed_in.status == 404


async def test_mfa_events_are_handled_once_and_deletion_erases_the_secret() -> None:
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        await _enrolled(idp, session["access_token"])
        [enabled] = idp.h.published_of("MFA_ENABLED")
        await idp.h.runtime.publisher.publish([enabled, enabled])  # re-delivered twice
        await idp.h.settle()
        challenged = await idp.sign_in("ada@example.com")
        await idp.call("DELETE", f"/users/{user_id}", token=session["access_token"])
        await idp.h.settle()
        [deleted] = idp.h.published_of("USER_DELETED")
        await idp.h.runtime.publisher.publish([deleted, deleted])
        await idp.h.settle()
        [disabled] = idp.h.published_of("MFA_DISABLED")
        await idp.h.runtime.publisher.publish([disabled, disabled])
        await idp.h.settle()
        left = await idp.h.runtime.tables["auth_mfa"].query(
            Key("PK").eq(f"USER#{user_id}"), consistent=True
        )
    assert "mfa_challenge" in challenged.json() and left.items == []
    assert len(idp.h.handled("auth_core.require_second_factor")) == 1
    assert len(idp.h.handled("auth_mfa.erase_deleted_user")) == 1
    assert len(idp.h.handled("auth_core.drop_second_factor")) == 1
