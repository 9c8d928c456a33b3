"""Every auth_admin route asks for the admin role: without a token 401, with a member's
token 403, both as problem+json; and a disabled or demoted admin's unexpired token no longer
acts."""

from __future__ import annotations

import pytest

from bus.http import HttpResponse
from domains.auth_admin.app import ADMIN
from domains.auth_admin.app import domain as auth_admin
from tests.domains.admin import admin_identity, signed_in_admin
from tests.domains.identity import Identity

ROUTES = [(r.method, r.path) for r in auth_admin.http_routes]


async def call_every_route(idp: Identity, user_id: str, token: str | None) -> list[HttpResponse]:
    return [
        await idp.call(method, path.format(user_id=user_id, role="admin"), token=token)
        for method, path in ROUTES
    ]


def test_every_route_asks_for_the_admin_role() -> None:
    assert len(ROUTES) == 6
    assert all(r.access == ADMIN for r in auth_admin.http_routes)


async def test_no_token_is_401_and_a_members_token_is_403_on_every_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        await signed_in_admin(idp)
        bob_id, bob = await idp.member("bob@example.com", "Bob")
        anonymous = await call_every_route(idp, bob_id, None)
        member = await call_every_route(idp, bob_id, bob["access_token"])
        await idp.h.settle()
    assert [a.status for a in anonymous] == [401] * len(ROUTES)
    assert all(a.headers["www-authenticate"].startswith("Bearer") for a in anonymous)
    assert [a.status for a in member] == [403] * len(ROUTES)
    assert {a.headers["content-type"] for a in anonymous + member} == {"application/problem+json"}
    assert idp.h.published_of("USER_DISABLED") == idp.h.published_of("ROLE_REVOKED") == []


async def test_a_disabled_admins_unexpired_token_no_longer_acts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, root = await signed_in_admin(idp)
        bob_id, _ = await idp.member("bob@example.com", "Bob")
        await idp.call("PUT", f"/admin/users/{bob_id}/roles/admin", token=root)
        await idp.h.settle()
        bob = (await idp.sign_in("bob@example.com")).json()["access_token"]
        await idp.call("POST", f"/admin/users/{bob_id}/disable", token=root)
        await idp.h.settle()
        answers = await call_every_route(idp, bob_id, bob)
    assert [a.status for a in answers] == [401] * len(ROUTES)
