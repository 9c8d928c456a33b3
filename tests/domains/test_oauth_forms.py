"""auth_oauth's token and revocation endpoints take form-encoded bodies, as RFC 6749 (3.2,
4.1.3) and RFC 7009 (2.1) have clients send them; JSON stays accepted beside them."""

from __future__ import annotations

from urllib.parse import urlencode

from bus.http import FORM_CONTENT_TYPE
from tests.domains.oauth import REDIRECT_URI, pkce_pair, provider


async def test_a_code_is_exchanged_and_its_refresh_token_revoked_with_form_bodies() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        code = await op.authorize(session["access_token"], client["client_id"], challenge)
        form = {
            "grant_type": "authorization_code",
            "code": code.json()["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
        tokens = await op.client.request(
            "POST", "/oauth/token", raw=urlencode(form).encode(), content_type=FORM_CONTENT_TYPE
        )
        revoked = await op.client.request(
            "POST",
            "/oauth/revoke",
            raw=urlencode(
                {
                    "token": tokens.json()["refresh_token"],
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                }
            ).encode(),
            content_type=f"{FORM_CONTENT_TYPE}; charset=utf-8",
        )
        await op.h.settle()
    assert tokens.status == 200, tokens.json()
    assert tokens.json()["token_type"] == "Bearer" and tokens.json()["id_token"]
    assert revoked.status == 200, revoked.json()
    assert len(op.h.published_of("OAUTH_GRANT_REVOKED")) == 1


async def test_a_form_repeating_a_parameter_or_not_utf8_is_refused() -> None:
    async with provider() as op:
        repeated = await op.client.request(
            "POST",
            "/oauth/token",
            raw=b"grant_type=client_credentials&grant_type=authorization_code",
            content_type=FORM_CONTENT_TYPE,
        )
        not_utf8 = await op.client.request(
            "POST", "/oauth/token", raw=b"grant_type=\xff", content_type=FORM_CONTENT_TYPE
        )
    assert repeated.status == 400 and "grant_type repeated" in repeated.json()["detail"]
    assert not_utf8.status == 400
    assert op.h.published_of("OAUTH_GRANT_ISSUED") == []
