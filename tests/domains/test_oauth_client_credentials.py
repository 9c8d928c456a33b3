"""auth_oauth's client credentials grant: a confidential client acting for itself gets an
access token within its registered scope, and no refresh or ID token."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.domains.oauth import basic, provider


async def test_a_confidential_client_gets_an_access_token_for_itself() -> None:
    async with provider() as op:
        client = await op.register(
            grant_types=["client_credentials"], redirect_uris=[], scope="reports:read"
        )
        auth = basic(client["client_id"], client["client_secret"])
        tokens = await op.token({"grant_type": "client_credentials"}, auth=auth)
        jwks = await op.call("GET", "/oauth/jwks.json")
    assert tokens.status == 200, tokens.json()
    answer = tokens.json()
    assert answer["refresh_token"] is None and answer["id_token"] is None
    assert answer["scope"] == "reports:read"
    claims = jwt.decode(answer["access_token"], KeySet.import_key_set(jwks.json())).claims
    assert claims["sub"] == claims["client_id"] == client["client_id"]
    [issued] = op.h.published_of("OAUTH_GRANT_ISSUED")
    assert issued.data_dict()["user_id"] is None
    assert issued.data_dict()["grant_type"] == "client_credentials"


async def test_client_credentials_refuse_a_wider_scope_a_wrong_secret_and_other_clients() -> None:
    async with provider() as op:
        client = await op.register(
            grant_types=["client_credentials"], redirect_uris=[], scope="reports:read"
        )
        web = await op.register()
        auth = basic(client["client_id"], client["client_secret"])
        wider = await op.token({"grant_type": "client_credentials", "scope": "admin"}, auth=auth)
        wrong = await op.token(
            {"grant_type": "client_credentials"}, auth=basic(client["client_id"], "nope")
        )
        not_allowed = await op.token(
            {"grant_type": "client_credentials"},
            auth=basic(web["client_id"], web["client_secret"]),
        )
        malformed = await op.token({"grant_type": "client_credentials"}, auth="Basic !!!")
    assert wider.status == 400 and wider.json()["error"] == "invalid_scope"
    assert wrong.status == 401 and wrong.json()["error"] == "invalid_client"
    assert not_allowed.status == 400 and not_allowed.json()["error"] == "unauthorized_client"
    assert malformed.status == 401 and malformed.json()["error"] == "invalid_client"
    assert op.h.published_of("OAUTH_GRANT_ISSUED") == []
