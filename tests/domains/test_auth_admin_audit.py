"""The audit log over HTTP: every admin action leaves one entry (who, what, whom, when, the
request's correlation id), newest first, a page at a time; nothing rewrites an entry."""

from __future__ import annotations

import pytest

from domains.auth_admin.app import domain as auth_admin
from tests.domains.admin import admin_identity, signed_in_admin


async def test_each_admin_action_leaves_one_entry_newest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        admin_id, admin = await signed_in_admin(idp)
        bob_id = await idp.sign_up("bob@example.com", "Bob")
        actions = [
            await idp.call(method, f"/admin/users/{bob_id}/{path}", token=admin)
            for method, path in [
                ("POST", "disable"),
                ("POST", "disable"),  # no change: no entry
                ("POST", "enable"),
                ("PUT", "roles/admin"),
                ("DELETE", "roles/admin"),
            ]
        ]
        idp.h.clock.advance(1.5)  # type: ignore[attr-defined]
        log = await idp.call("GET", "/admin/audit", token=admin)
        await idp.h.settle()
    assert [a.status for a in actions] == [200] * 5
    entries = log.json()["items"]
    assert log.json()["cursor"] is None
    assert [(e["action"], e.get("role")) for e in entries] == [
        ("role_revoked", "admin"),
        ("role_granted", "admin"),
        ("user_enabled", None),
        ("user_disabled", None),
        ("role_granted", "admin"),  # the first admin, from configuration
    ]
    assert [e["actor_id"] for e in entries] == [admin_id] * 4 + [None]
    assert [e["user_id"] for e in entries] == [bob_id] * 4 + [admin_id]
    correlation = [a.headers["x-correlation-id"] for a in actions]
    assert [e["correlation_id"] for e in entries[:4]] == [
        correlation[4],
        correlation[3],
        correlation[2],
        correlation[0],
    ]
    assert all(e["at"].endswith("Z") and len(e["at"]) == 24 for e in entries)


async def test_the_audit_log_pages_with_a_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id = await idp.sign_up("bob@example.com", "Bob")
        for _ in range(3):
            await idp.call("POST", f"/admin/users/{bob_id}/disable", token=admin)
            await idp.call("POST", f"/admin/users/{bob_id}/enable", token=admin)
        first = (await idp.call("GET", "/admin/audit?limit=4", token=admin)).json()
        rest = await idp.call("GET", f"/admin/audit?limit=4&cursor={first['cursor']}", token=admin)
        whole = (await idp.call("GET", "/admin/audit", token=admin)).json()
    assert len(first["items"]) == 4 and len(rest.json()["items"]) == 3
    assert rest.json()["cursor"] is None
    assert first["items"] + rest.json()["items"] == whole["items"]


def test_the_audit_log_has_no_route_that_writes_it() -> None:
    audit_routes = [r for r in auth_admin.http_routes if r.path.startswith("/admin/audit")]
    assert [(r.method, r.path) for r in audit_routes] == [("GET", "/admin/audit")]
