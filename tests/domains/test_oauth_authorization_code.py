"""auth_oauth's authorization code flow with PKCE: the signed-in user authorizes a client,
the client exchanges the code once, within its minute, with the verifier and the same
redirect URI, and gets tokens and an ID token the discovery document's keys verify."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from domains.auth_oauth.app import CODE_LIFETIME, issuer
from tests.domains.oauth import REDIRECT_URI, basic, pkce_pair, provider


async def test_a_code_becomes_tokens_and_an_id_token_verified_with_the_discovered_keys() -> None:
    async with provider() as op:
        user_id, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        authorized = await op.authorize(session["access_token"], client["client_id"], challenge)
        tokens = await op.exchange(client, authorized.json()["code"], verifier)
        metadata = (await op.call("GET", "/.well-known/openid-configuration")).json()
        jwks = await op.call("GET", metadata["jwks_uri"].removeprefix(issuer()))
    assert authorized.status == 200 and authorized.json()["state"] == "st-1"
    redirect = urlsplit(authorized.json()["redirect_to"])
    assert redirect._replace(query="").geturl() == REDIRECT_URI
    assert parse_qs(redirect.query) == {"code": [authorized.json()["code"]], "state": ["st-1"]}
    assert tokens.status == 200, tokens.json()
    answer = tokens.json()
    assert answer["token_type"] == "Bearer" and answer["scope"] == "openid profile"
    assert tokens.headers["cache-control"] == "no-store"
    keys = KeySet.import_key_set(jwks.json())
    id_token = jwt.decode(answer["id_token"], keys, algorithms=["ES256"])
    JWTClaimsRegistry(
        now=lambda: int(op.h.clock.now()),
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client["client_id"]},
        sub={"essential": True, "value": user_id},
        nonce={"essential": True, "value": "n-1"},
        exp={"essential": True},
    ).validate(id_token.claims)
    assert id_token.header["kid"] == jwks.json()["keys"][-1]["kid"]
    access = jwt.decode(answer["access_token"], keys, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt" and access.claims["client_id"] == client["client_id"]
    assert all("d" not in key for key in jwks.json()["keys"])
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["token_endpoint"] == f"{issuer()}/oauth/token"
    [issued] = op.h.published_of("OAUTH_GRANT_ISSUED")
    assert issued.data_dict() == {
        "grant_id": issued.data_dict()["grant_id"],
        "client_id": client["client_id"],
        "user_id": user_id,
        "grant_type": "authorization_code",
        "scope": "openid profile",
    }


async def test_a_client_may_authenticate_with_http_basic() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        body = {
            "grant_type": "authorization_code",
            "code": code["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        tokens = await op.token(body, auth=basic(client["client_id"], client["client_secret"]))
    assert tokens.status == 200, tokens.json()


async def test_a_public_client_exchanges_its_code_with_pkce_alone() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register(confidential=False)
        verifier, challenge = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        tokens = await op.exchange(client, code["code"], verifier)
    assert tokens.status == 200 and tokens.json()["refresh_token"]


async def test_authorizing_needs_a_signed_in_user() -> None:
    async with provider() as op:
        client = await op.register()
        _, challenge = pkce_pair()
        body = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
        }
        anonymous = await op.call("POST", "/oauth/authorize", body)
    assert anonymous.status == 401


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"redirect_uri": REDIRECT_URI + "/"}, "invalid_request"),
        ({"redirect_uri": "https://evil.example.com/callback"}, "invalid_request"),
        ({"client_id": "no-such-client"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"code_challenge": "too-short"}, "invalid_request"),
    ],
)
async def test_an_authorization_request_that_breaks_a_rule_is_refused_without_a_code(
    change: dict[str, object], error: str
) -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        _, challenge = pkce_pair()
        body = {"client_id": client["client_id"], **change}
        refused = await op.authorize(session["access_token"], challenge=challenge, **body)
    assert refused.status == 400 and refused.json()["error"] == error, refused.json()
    assert "redirect_to" not in refused.json() and "code" not in refused.json()


async def test_a_wrong_pkce_verifier_is_invalid_grant() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        _, challenge = pkce_pair()
        other_verifier, _ = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        wrong = await op.exchange(client, code["code"], other_verifier)
        missing = await op.exchange(client, code["code"], None)
    assert wrong.status == missing.status == 400
    assert wrong.json()["error"] == missing.json()["error"] == "invalid_grant"
    assert op.h.published_of("OAUTH_GRANT_ISSUED") == []


async def test_a_code_redeemed_with_another_redirect_uri_is_invalid_grant() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register(redirect_uris=[REDIRECT_URI, "https://app.example.com/other"])
        verifier, challenge = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        other = await op.exchange(
            client, code["code"], verifier, redirect_uri="https://app.example.com/other"
        )
        right = await op.exchange(client, code["code"], verifier)
    assert other.status == 400 and other.json()["error"] == "invalid_grant"
    assert right.status == 200


async def test_a_reused_code_is_refused_and_revokes_the_grant_it_issued() -> None:
    async with provider() as op:
        user_id, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        first = await op.exchange(client, code["code"], verifier)
        again = await op.exchange(client, code["code"], verifier)
        refresh = await op.token(
            {
                "grant_type": "refresh_token",
                "refresh_token": first.json()["refresh_token"],
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            }
        )
    assert first.status == 200
    assert again.status == 400 and again.json()["error"] == "invalid_grant"
    assert refresh.status == 400 and refresh.json()["error"] == "invalid_grant"
    [revoked] = op.h.published_of("OAUTH_GRANT_REVOKED")
    assert revoked.data_dict()["reason"] == "code_reused"
    assert revoked.data_dict()["user_id"] == user_id


async def test_a_code_expires_after_its_lifetime() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        late = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        verifier2, challenge2 = pkce_pair()
        timely = (
            await op.authorize(session["access_token"], client["client_id"], challenge2)
        ).json()
        op.h.clock.advance(CODE_LIFETIME - 1)  # type: ignore[attr-defined]
        in_time = await op.exchange(client, timely["code"], verifier2)
        op.h.clock.advance(1)  # type: ignore[attr-defined]
        expired = await op.exchange(client, late["code"], verifier)
    assert in_time.status == 200
    assert expired.status == 400 and expired.json()["error"] == "invalid_grant"


async def test_a_wrong_client_secret_is_invalid_client_with_a_basic_challenge() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        wrong = await op.exchange(client, code["code"], verifier, client_secret="not-the-secret")
        basic_wrong = await op.token(
            {"grant_type": "authorization_code", "code": code["code"]},
            auth=basic(client["client_id"], "not-the-secret"),
        )
        unknown = await op.exchange(client, code["code"], verifier, client_id="nobody")
        right = await op.exchange(client, code["code"], verifier)
    for refused in (wrong, basic_wrong, unknown):
        assert refused.status == 401 and refused.json()["error"] == "invalid_client"
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert refused.headers["content-type"] == "application/json"
    assert right.status == 200  # the failed attempts did not spend the code


async def test_an_unknown_grant_type_and_a_missing_code_are_oauth_errors() -> None:
    async with provider() as op:
        client = await op.register()
        creds = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
        unknown = await op.token({"grant_type": "password", **creds})
        no_code = await op.token({"grant_type": "authorization_code", **creds})
        not_allowed = await op.token({"grant_type": "client_credentials", **creds})
    assert unknown.status == 400 and unknown.json()["error"] == "unsupported_grant_type"
    assert no_code.status == 400 and no_code.json()["error"] == "invalid_request"
    assert not_allowed.status == 400 and not_allowed.json()["error"] == "unauthorized_client"


async def test_parameters_the_provider_does_not_know_are_ignored() -> None:
    """RFC 6749 3.1 and 3.2: unrecognized request parameters are ignored, not refused."""
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register()
        verifier, challenge = pkce_pair()
        code = await op.authorize(
            session["access_token"], client["client_id"], challenge, prompt="consent"
        )
        tokens = await op.exchange(client, code.json()["code"], verifier, resource="urn:x")
    assert code.status == 200, code.json()
    assert tokens.status == 200, tokens.json()
