"""auth_oauth reacts to account events: a disabled or deleted user's grants end once, however
often the event is delivered, and their clients' refresh tokens stop working."""

from __future__ import annotations

from typing import Any

from bus.storage.memory import InMemoryTable
from domains.auth_admin.contracts import UserDisabled
from domains.users.contracts import UserDeleted
from tests.domains.oauth import provider


def _refresh(client: dict[str, Any], refresh_token: str) -> dict[str, Any]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }


async def test_a_disabled_users_grants_are_revoked_once_per_event() -> None:
    async with provider() as op:
        user_id, client, tokens = await op.granted()
        _, other_client, others = await op.granted("bob@example.com")
        disabled = await op.h.publish(UserDisabled(user_id=user_id), source="auth_admin")
        await op.h.runtime.publisher.publish([disabled, disabled])  # re-delivered twice
        await op.h.settle()
        refused = await op.token(_refresh(client, tokens["refresh_token"]))
        unaffected = await op.token(_refresh(other_client, others["refresh_token"]))
    assert refused.status == 400 and refused.json()["error"] == "invalid_grant"
    assert unaffected.status == 200
    [revoked] = op.h.published_of("OAUTH_GRANT_REVOKED")
    assert revoked.data_dict()["reason"] == "user_disabled"
    assert revoked.data_dict()["user_id"] == user_id
    assert len(op.h.handled("auth_oauth.revoke_grants_of_disabled_user")) == 1


async def test_a_deleted_users_grants_are_erased_and_announced_once() -> None:
    async with provider() as op:
        user_id, client, tokens = await op.granted()
        deleted = await op.h.publish(UserDeleted(user_id=user_id), source="users")
        await op.h.runtime.publisher.publish([deleted, deleted])  # re-delivered twice
        await op.h.settle()
        refused = await op.token(_refresh(client, tokens["refresh_token"]))
        grants = [
            item
            for table in op.h.runtime.tables.values()
            if isinstance(table, InMemoryTable)
            for item in table.scan()
            if str(item["SK"]).startswith("GRANT#")
        ]
    assert refused.status == 400 and refused.json()["error"] == "invalid_grant"
    [revoked] = op.h.published_of("OAUTH_GRANT_REVOKED")
    assert revoked.data_dict()["reason"] == "user_deleted"
    assert len(op.h.handled("auth_oauth.erase_grants_of_deleted_user")) == 1
    assert [g["user_id"] for g in grants] == []
