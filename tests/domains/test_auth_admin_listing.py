"""The admin's list of users over HTTP: auth_admin's projection of USER_CREATED /
USER_UPDATED / USER_DELETED, read a page at a time with an opaque cursor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domains.admin import admin_identity, signed_in_admin
from tests.domains.identity import Identity


async def read_all(idp: Identity, token: str, query: str = "") -> list[dict[str, Any]]:
    """Every page, following the cursors."""
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        suffix = query + (f"&cursor={cursor}" if cursor else "")
        answer = await idp.call("GET", f"/admin/users?{suffix.lstrip('&')}", token=token)
        assert answer.status == 200, answer.json()
        pages.append(answer.json())
        cursor = answer.json()["cursor"]
        if cursor is None:
            return pages


async def test_forty_five_users_come_in_pages_of_twenty_in_sign_up_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        admin_id, admin = await signed_in_admin(idp)
        signed_up = [await idp.sign_up(f"user{i}@example.com", f"User {i}") for i in range(45)]
        pages = await read_all(idp, admin)
        big = await idp.call("GET", "/admin/users?limit=100", token=admin)
        small = await read_all(idp, admin, "limit=23")
    assert [len(p["items"]) for p in pages] == [20, 20, 6]
    ids = [u["user_id"] for p in pages for u in p["items"]]
    assert ids == [admin_id, *signed_up]
    assert pages[0]["items"][1] == {
        "user_id": signed_up[0],
        "email": "user0@example.com",
        "name": "User 0",
        "plan": "free",
        "status": "active",
        "roles": [],
    }
    assert [u["user_id"] for u in big.json()["items"]] == ids and big.json()["cursor"] is None
    assert [len(p["items"]) for p in small] == [23, 23]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=ten", "limit=-1", "cursor=%25%25", "cursor=bm90IGFuIGlk"],
)
async def test_a_bad_limit_or_cursor_is_a_422_problem(
    monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        answer = await idp.call("GET", f"/admin/users?{query}", token=admin)
    assert answer.status == 422 and answer.headers["content-type"] == "application/problem+json"


async def test_the_list_follows_profile_changes_and_deletions_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with admin_identity(monkeypatch) as idp:
        _, admin = await signed_in_admin(idp)
        bob_id, bob = await idp.member("bob@example.com", "Bob")
        carol_id, carol = await idp.member("carol@example.com", "Carol")
        await idp.call("PATCH", f"/users/{bob_id}", {"plan": "pro"}, token=bob["access_token"])
        await idp.call("DELETE", f"/users/{carol_id}", token=carol["access_token"])
        await idp.h.settle()
        facts = [
            *idp.h.published_of("USER_CREATED"),
            *idp.h.published_of("USER_UPDATED"),
            *idp.h.published_of("USER_DELETED"),
        ]
        await idp.h.runtime.publisher.publish([f for fact in facts for f in (fact, fact)])
        await idp.h.settle()
        [page] = await read_all(idp, admin)
    assert [(u["user_id"], u["plan"]) for u in page["items"][1:]] == [(bob_id, "pro")]
    for handler in ("list_new_user", "update_listed_user", "forget_deleted_user"):
        handled = idp.h.handled(f"auth_admin.{handler}")
        assert len(handled) == {"list_new_user": 3}.get(handler, 1), handler
    assert len(idp.h.published_of("ROLE_GRANTED")) == 1
