"""auth_oauth refresh tokens and revocation (RFC 7009): each refresh token works once and is
replaced; a spent one presented again, or a revoked grant, gets invalid_grant."""

from __future__ import annotations

from typing import Any

from domains.auth_oauth.app import REFRESH_TOKEN_LIFETIME
from tests.domains.oauth import Provider, basic, provider


def _refresh(client: dict[str, Any], refresh_token: str, **extra: Any) -> dict[str, Any]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        **extra,
    }


async def _revoke(op: Provider, client: dict[str, Any], token: str) -> Any:
    auth = basic(client["client_id"], client["client_secret"])
    answer = await op.client.request("POST", "/oauth/revoke", {"token": token}, authorization=auth)
    await op.h.settle()
    return answer


async def test_a_refresh_token_is_rotated_and_a_spent_one_revokes_the_grant() -> None:
    async with provider() as op:
        _, client, tokens = await op.granted()
        first = await op.token(_refresh(client, tokens["refresh_token"]))
        second = await op.token(_refresh(client, first.json()["refresh_token"]))
        replayed = await op.token(_refresh(client, tokens["refresh_token"]))
        latest = await op.token(_refresh(client, second.json()["refresh_token"]))
    assert first.status == second.status == 200
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    assert first.json()["scope"] == "openid profile" and first.json()["id_token"]
    assert replayed.status == latest.status == 400
    assert replayed.json()["error"] == latest.json()["error"] == "invalid_grant"
    [revoked] = op.h.published_of("OAUTH_GRANT_REVOKED")
    assert revoked.data_dict()["reason"] == "refresh_token_reused"


async def test_a_refresh_may_narrow_the_scope_but_never_widen_it() -> None:
    async with provider() as op:
        _, client, tokens = await op.granted()
        narrowed = await op.token(_refresh(client, tokens["refresh_token"], scope="profile"))
        widened = await op.token(
            _refresh(client, narrowed.json()["refresh_token"], scope="profile admin")
        )
        still = await op.token(_refresh(client, narrowed.json()["refresh_token"]))
    assert narrowed.status == 200 and narrowed.json()["scope"] == "profile"
    assert narrowed.json()["id_token"] is None
    assert widened.status == 400 and widened.json()["error"] == "invalid_scope"
    assert still.status == 200  # a refused refresh does not spend the token


async def test_a_refresh_token_works_only_for_its_client_and_until_it_expires() -> None:
    async with provider() as op:
        _, client, tokens = await op.granted()
        other = await op.register(name="Other app")
        stolen = await op.token(_refresh(other, tokens["refresh_token"]))
        op.h.clock.advance(REFRESH_TOKEN_LIFETIME)  # type: ignore[attr-defined]
        expired = await op.token(_refresh(client, tokens["refresh_token"]))
    assert stolen.status == expired.status == 400
    assert stolen.json()["error"] == expired.json()["error"] == "invalid_grant"
    assert op.h.published_of("OAUTH_GRANT_REVOKED") == []


async def test_a_revoked_refresh_token_is_refused_and_revocation_answers_200_for_any_token() -> (
    None
):
    async with provider() as op:
        user_id, client, tokens = await op.granted()
        revoked = await _revoke(op, client, tokens["refresh_token"])
        again = await _revoke(op, client, tokens["refresh_token"])
        unknown = await _revoke(op, client, "not-a-token")
        access = await _revoke(op, client, tokens["access_token"])
        refused = await op.token(_refresh(client, tokens["refresh_token"]))
    assert [a.status for a in (revoked, again, unknown, access)] == [200] * 4
    assert revoked.json() == {}
    assert refused.status == 400 and refused.json()["error"] == "invalid_grant"
    [event] = op.h.published_of("OAUTH_GRANT_REVOKED")
    assert event.data_dict()["reason"] == "revoked" and event.data_dict()["user_id"] == user_id


async def test_a_client_cannot_revoke_another_clients_token_or_revoke_unauthenticated() -> None:
    async with provider() as op:
        _, client, tokens = await op.granted()
        other = await op.register(name="Other app")
        foreign = await _revoke(op, other, tokens["refresh_token"])
        anonymous = await op.call("POST", "/oauth/revoke", {"token": tokens["refresh_token"]})
        still = await op.token(_refresh(client, tokens["refresh_token"]))
    assert foreign.status == 200 and anonymous.status == 401
    assert anonymous.json()["error"] == "invalid_client"
    assert still.status == 200
