"""Who reads a user's achievements: the user and admins; anyone else, and anyone asking for
a user nobody knows, gets the same 404 problem, so ids do not leak."""

from __future__ import annotations

import pytest

from domains.social.contracts import PostCreated
from tests.domains.achievements import ADMIN_EMAIL, Achieving, achievements_platform

PROBLEM = "application/problem+json"


async def first_post(a: Achieving, user_id: str) -> None:
    await a.happen(PostCreated(post_id="p1", user_id=user_id, text="hi", created_at="x"))


async def test_an_admin_reads_anyones_achievements(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        _, root = await a.customer(ADMIN_EMAIL, payment_method=None)
        ada, _ = await a.customer("ada@example.com", payment_method=None)
        await first_post(a, ada)
        earned = await a.earned(ada, root)
    assert earned == ["first_post"]


async def test_someone_elses_achievements_are_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, _ = await a.customer("ada@example.com", payment_method=None)
        _, bob = await a.customer("bob@example.com", payment_method=None)
        await first_post(a, ada)
        answer = await a.achievements(ada, bob)
    assert answer.status == 404
    assert answer.headers["content-type"] == PROBLEM
    assert "first_post" not in answer.body.decode()


async def test_an_unknown_user_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        _, root = await a.customer(ADMIN_EMAIL, payment_method=None)
        answer = await a.achievements("01900000-0000-7000-8000-000000000000", root)
    assert answer.status == 404
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["status"] == 404


async def test_achievements_need_a_signed_in_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, _ = await a.customer("ada@example.com", payment_method=None)
        answer = await a.call("GET", f"/users/{ada}/achievements")
    assert answer.status == 401
    assert answer.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("query", "status"), [("limit=0", 422), ("limit=101", 422), ("cursor=not-ours", 422)]
)
async def test_a_bad_page_query_is_a_client_error(
    monkeypatch: pytest.MonkeyPatch, query: str, status: int
) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        answer = await a.achievements(ada, token, query)
    assert answer.status == status
    assert answer.headers["content-type"] == PROBLEM


async def test_achievements_come_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    async with achievements_platform(monkeypatch) as a:
        ada, token = await a.customer("ada@example.com")
        await a.subscribe(ada, token, "business")
        await first_post(a, ada)
        first = (await a.achievements(ada, token, "limit=2")).json()
        rest = (await a.achievements(ada, token, f"limit=2&cursor={first['cursor']}")).json()
    ids = [i["achievement_id"] for i in first["items"] + rest["items"]]
    assert sorted(ids) == ["big_spender", "first_invoice_paid", "first_post"]
    assert len(first["items"]) == 2 and rest["cursor"] is None
