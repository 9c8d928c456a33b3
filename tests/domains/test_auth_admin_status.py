"""Disabling and enabling a user over HTTP, end to end: auth_admin publishes USER_DISABLED,
auth_core ends every session and refuses sign-in, users records the status; enabling undoes
it. Each reaction runs once however often its fact is delivered."""

from __future__ import annotations

import pytest

from tests.domains.admin import admin_identity, signed_in_admin


async def test_a_disabled_user_cannot_refresh_or_sign_in_until_enabled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id, first = await idp.member("bob@example.com", "Bob")
        second = (await idp.sign_in("bob@example.com")).json()
        disabled = await idp.call("POST", f"/admin/users/{bob_id}/disable", token=admin)
        await idp.h.settle()
        refreshes = [
            await idp.call("POST", "/auth/sessions/refresh", {"refresh_token": s["refresh_token"]})
            for s in (first, second)
        ]
        refused = await idp.sign_in("bob@example.com")
        profile = await idp.call("GET", f"/users/{bob_id}", token=admin)
        enabled = await idp.call("POST", f"/admin/users/{bob_id}/enable", token=admin)
        await idp.h.settle()
        again = await idp.sign_in("bob@example.com")
        profile_after = await idp.call("GET", f"/users/{bob_id}", token=admin)
    assert disabled.status == 200 and disabled.json()["status"] == "disabled"
    assert [r.status for r in refreshes] == [401, 401] and refused.status == 401
    assert profile.json()["status"] == "disabled"
    assert enabled.status == 200 and enabled.json()["status"] == "active"
    assert again.status == 201 and profile_after.json()["status"] == "active"
    reasons = [e.data_dict()["reason"] for e in idp.h.published_of("SIGNED_OUT")]
    assert reasons == ["user_disabled", "user_disabled"]
    [failed] = idp.h.published_of("SIGN_IN_FAILED")
    assert failed.data_dict() == {"user_id": bob_id, "reason": "disabled"}


async def test_disabling_twice_announces_once_and_an_admin_cannot_disable_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        admin_id, admin = await signed_in_admin(idp)
        bob_id = await idp.sign_up("bob@example.com", "Bob")
        answers = [
            await idp.call("POST", f"/admin/users/{bob_id}/disable", token=admin) for _ in range(2)
        ]
        own = await idp.call("POST", f"/admin/users/{admin_id}/disable", token=admin)
        unknown = await idp.call("POST", "/admin/users/nobody/disable", token=admin)
        enable_active = await idp.call("POST", f"/admin/users/{admin_id}/enable", token=admin)
        await idp.h.settle()
    assert [a.status for a in answers] == [200, 200]
    assert own.status == 422 and unknown.status == 404 and enable_active.status == 200
    assert len(idp.h.published_of("USER_DISABLED")) == 1
    assert idp.h.published_of("USER_ENABLED") == []


async def test_status_facts_redelivered_twice_are_handled_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id, _ = await idp.member("bob@example.com", "Bob")
        await idp.call("POST", f"/admin/users/{bob_id}/disable", token=admin)
        await idp.call("POST", f"/admin/users/{bob_id}/enable", token=admin)
        await idp.h.settle()
        [disabled] = idp.h.published_of("USER_DISABLED")
        [enabled] = idp.h.published_of("USER_ENABLED")
        await idp.h.runtime.publisher.publish([disabled, disabled, enabled, enabled])
        await idp.h.settle()
        signed_in = await idp.sign_in("bob@example.com")
    assert signed_in.status == 201
    for handler in (
        "auth_core.end_sessions_of_disabled_user",
        "auth_core.allow_enabled_user",
        "users.mark_disabled",
        "users.mark_enabled",
    ):
        assert len(idp.h.handled(handler)) == 1, handler
