"""auth_admin's roles over HTTP: the first admin from configuration, granting and revoking a
role, the `roles` claim auth_core puts into access tokens, and what the role opens in users."""

from __future__ import annotations

import base64
import json

import pytest

from bus.envelope import Envelope
from domains.auth_admin.contracts import RoleGranted, RoleRevoked
from tests.domains.admin import ADMIN_EMAIL, admin_identity, signed_in_admin
from tests.domains.identity import Identity


def role_facts(idp: Identity) -> list[Envelope]:
    return [e for e in idp.h.published if e.type in ("ROLE_GRANTED", "ROLE_REVOKED")]


def roles_claim(access_token: str) -> list[str]:
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return list(claims["roles"])


async def test_the_configured_address_becomes_the_first_admin_on_signing_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        admin_id, token = await signed_in_admin(idp)
        _, member = await idp.member("ada@example.com")
    assert roles_claim(token) == ["admin"] and roles_claim(member["access_token"]) == []
    [granted] = idp.h.published_of("ROLE_GRANTED")
    assert granted.data_dict() == {"user_id": admin_id, "role": "admin", "revision": 1}


async def test_the_address_is_matched_in_its_normal_form(monkeypatch: pytest.MonkeyPatch) -> None:
    async with admin_identity(monkeypatch) as idp:
        monkeypatch.setenv("TCTF_ADMIN_EMAIL", " Root@EXAMPLE.com. ")
        await idp.sign_up(ADMIN_EMAIL)
    assert len(idp.h.published_of("ROLE_GRANTED")) == 1


async def test_a_granted_role_reaches_the_next_token_and_a_revoked_one_leaves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id, _ = await idp.member("bob@example.com", "Bob")
        granted = await idp.call("PUT", f"/admin/users/{bob_id}/roles/admin", token=admin)
        await idp.h.settle()
        as_admin = (await idp.sign_in("bob@example.com")).json()["access_token"]
        listing = await idp.call("GET", "/admin/users", token=as_admin)
        revoked = await idp.call("DELETE", f"/admin/users/{bob_id}/roles/admin", token=admin)
        await idp.h.settle()
        after = (await idp.sign_in("bob@example.com")).json()["access_token"]
        refused = await idp.call("GET", "/admin/users", token=after)
        stale = await idp.call("GET", "/admin/users", token=as_admin)
    assert granted.status == 200 and granted.json()["roles"] == ["admin"]
    assert roles_claim(as_admin) == ["admin"] and listing.status == 200
    assert revoked.status == 200 and revoked.json()["roles"] == []
    assert roles_claim(after) == [] and refused.status == 403
    # The old token still says admin for up to 15 minutes; auth_admin knows better.
    assert stale.status == 401
    assert [e.type for e in role_facts(idp)] == [
        "ROLE_GRANTED",
        "ROLE_GRANTED",
        "ROLE_REVOKED",
    ]


async def test_granting_a_held_role_or_revoking_a_missing_one_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        admin_id, admin = await signed_in_admin(idp)
        bob_id = await idp.sign_up("bob@example.com", "Bob")
        again = await idp.call("PUT", f"/admin/users/{admin_id}/roles/admin", token=admin)
        missing = await idp.call("DELETE", f"/admin/users/{bob_id}/roles/admin", token=admin)
        await idp.h.settle()
    assert again.status == missing.status == 200
    assert len(role_facts(idp)) == 1  # the bootstrap


async def test_unknown_roles_and_users_are_404_and_an_admin_keeps_their_own_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        admin_id, admin = await signed_in_admin(idp)
        bob_id = await idp.sign_up("bob@example.com", "Bob")
        unknown_role = await idp.call("PUT", f"/admin/users/{bob_id}/roles/root", token=admin)
        unknown_user = await idp.call("PUT", "/admin/users/nobody/roles/admin", token=admin)
        own = await idp.call("DELETE", f"/admin/users/{admin_id}/roles/admin", token=admin)
    assert unknown_role.status == unknown_user.status == 404
    assert own.status == 422 and "own admin role" in own.json()["detail"]
    assert own.headers["content-type"] == "application/problem+json"


async def test_an_admin_reads_changes_and_deletes_another_users_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id, bob = await idp.member("bob@example.com", "Bob")
        carol_id, _ = await idp.member("carol@example.com", "Carol")
        read = await idp.call("GET", f"/users/{bob_id}", token=admin)
        changed = await idp.call("PATCH", f"/users/{bob_id}", {"name": "Robert"}, token=admin)
        deleted = await idp.call("DELETE", f"/users/{bob_id}", token=admin)
        await idp.h.settle()
        not_hers = [
            await idp.call("GET", f"/users/{carol_id}", token=bob["access_token"]),
            await idp.call("PATCH", f"/users/{carol_id}", {"name": "X"}, token=bob["access_token"]),
            await idp.call("DELETE", f"/users/{carol_id}", token=bob["access_token"]),
        ]
    assert read.status == 200 and read.json()["email"] == "bob@example.com"
    assert changed.status == 200 and changed.json()["name"] == "Robert"
    assert deleted.status == 204
    assert [a.status for a in not_hers] == [404, 404, 404]


async def test_role_facts_redelivered_twice_change_auth_core_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id, _ = await idp.member("bob@example.com", "Bob")
        await idp.call("PUT", f"/admin/users/{bob_id}/roles/admin", token=admin)
        await idp.call("DELETE", f"/admin/users/{bob_id}/roles/admin", token=admin)
        await idp.h.settle()
        _, granted, revoked = role_facts(idp)
        await idp.h.runtime.publisher.publish([granted, granted, revoked, revoked])
        await idp.h.settle()
        token = (await idp.sign_in("bob@example.com")).json()["access_token"]
    assert roles_claim(token) == []
    assert len(idp.h.handled("auth_core.remember_granted_role")) == 2  # bootstrap and bob
    assert len(idp.h.handled("auth_core.forget_revoked_role")) == 1


async def test_role_facts_arriving_out_of_order_leave_the_latest_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A standard SQS queue may deliver a revocation before the grant it undoes."""
    async with admin_identity(monkeypatch) as idp:
        bob_id, _ = await idp.member("bob@example.com", "Bob")
        carol_id, _ = await idp.member("carol@example.com", "Carol")
        arrivals = [
            RoleRevoked(user_id=bob_id, role="admin", revision=3),
            RoleGranted(user_id=bob_id, role="admin", revision=2),
            RoleGranted(user_id=carol_id, role="admin", revision=4),
            RoleGranted(user_id=carol_id, role="admin", revision=2),
            RoleRevoked(user_id=carol_id, role="admin", revision=3),
        ]
        for fact in arrivals:
            await idp.h.publish(fact, source="auth_admin")
            await idp.h.settle()
        bob = (await idp.sign_in("bob@example.com")).json()["access_token"]
        carol = (await idp.sign_in("carol@example.com")).json()["access_token"]
    assert roles_claim(bob) == [] and roles_claim(carol) == ["admin"]
