"""The keys and the issuer auth_oauth signs tokens with: in a deployed function, from the
stage's secret and its `app_url`, the same in every container, or no start at all; a
rotation of the secret leaves what the previous version signed verifiable."""

from __future__ import annotations

import json
import secrets

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from bus.secrets import variable
from domains.auth_core.keys import SigningKeys
from domains.auth_oauth.app import LOCAL_ISSUER, issuer_from
from domains.auth_oauth.errors import ProviderMisconfigured
from domains.auth_oauth.keys import SECRET, ProviderKeys

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "tctf-prod-auth_oauth"}
CURRENT, PREVIOUS = secrets.token_urlsafe(48), secrets.token_urlsafe(48)


def verified(token: str, keys: ProviderKeys) -> dict[str, object]:
    """The claims of `token`, checked against the JWK set `keys` publishes."""
    jwks = KeySet.import_key_set(keys.public_jwks())  # type: ignore[arg-type]
    return dict(jwt.decode(token, jwks).claims)


def test_a_deployed_auth_oauth_without_its_secret_refuses_to_start() -> None:
    with pytest.raises(ProviderMisconfigured, match=r"TCTF_SECRET_SIGNING.*other containers"):
        ProviderKeys.from_environment(DEPLOYED)


def test_two_containers_of_one_stage_accept_each_other_s_tokens() -> None:
    env = {**DEPLOYED, variable(SECRET): json.dumps([CURRENT])}
    one, other = ProviderKeys.from_environment(env), ProviderKeys.from_environment(env)
    assert verified(one.sign({"sub": "ada"}), other) == {"sub": "ada"}
    assert one.public_jwks() == other.public_jwks()


def test_after_a_rotation_the_previous_version_verifies_and_the_current_one_signs() -> None:
    before = ProviderKeys.from_environment({variable(SECRET): json.dumps([PREVIOUS])})
    after = ProviderKeys.from_environment({variable(SECRET): json.dumps([CURRENT, PREVIOUS])})
    assert verified(before.sign({"sub": "ada"}), after) == {"sub": "ada"}
    only_current = ProviderKeys.from_environment({variable(SECRET): json.dumps([CURRENT])})
    assert after.signing_kid == only_current.signing_kid != before.signing_kid
    assert len(after.public_jwks()["keys"]) == 2


def test_the_provider_s_keys_are_not_auth_core_s_from_the_same_text() -> None:
    """Each use derives its own key: a token of one issuer never verifies as the other's."""
    oauth = ProviderKeys.from_seeds([CURRENT])
    core = SigningKeys.from_seeds([CURRENT])
    assert oauth.signing_kid != core.active


def test_outside_a_deployed_function_a_key_is_made_for_the_process() -> None:
    keys = ProviderKeys.from_environment({})
    assert verified(keys.sign({"sub": "u"}), keys) == {"sub": "u"}
    assert ProviderKeys.from_environment({}).signing_kid != keys.signing_kid


def test_the_issuer_is_the_app_s_url_unless_the_provider_is_served_apart() -> None:
    app = {"TCTF_APP_URL": "https://app.example.com/"}
    assert issuer_from({**DEPLOYED, **app}) == "https://app.example.com"
    apart = {**app, "TCTF_OAUTH_ISSUER": "https://id.example.com"}
    assert issuer_from({**DEPLOYED, **apart}) == "https://id.example.com"
    assert issuer_from({}) == LOCAL_ISSUER


def test_a_deployed_auth_oauth_without_an_issuer_refuses_to_start() -> None:
    with pytest.raises(ProviderMisconfigured, match=r"TCTF_APP_URL.*app_url"):
        issuer_from(DEPLOYED)
