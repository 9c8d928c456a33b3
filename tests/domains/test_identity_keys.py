"""The keys auth_core signs tokens with and auth_mfa seals TOTP secrets with: in a deployed
function, from the stage's secret and the same in every container, or no start at all; a
rotation of the secret leaves what the previous version signed or sealed usable."""

from __future__ import annotations

import json
import secrets

import pytest
from cryptography.exceptions import InvalidTag
from joserfc import jwt
from joserfc.jwk import KeySet

from bus import ConfigurationError
from bus.secrets import variable
from domains.auth_core.keys import SECRET as SIGNING
from domains.auth_core.keys import SigningKeys
from domains.auth_mfa.errors import MfaKeyInvalid, MfaKeyMissing
from domains.auth_mfa.sealing import SECRET as SEALING
from domains.auth_mfa.sealing import SealingKeys

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "tctf-prod-auth_core"}
CURRENT, PREVIOUS = secrets.token_urlsafe(48), secrets.token_urlsafe(48)


def verified(token: str, keys: SigningKeys) -> dict[str, object]:
    """The claims of `token`, checked against the JWK set `keys` publishes."""
    jwks = KeySet.import_key_set(keys.public_jwks())  # type: ignore[arg-type]
    return dict(jwt.decode(token, jwks).claims)


def test_a_deployed_auth_core_without_its_secret_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match=r"TCTF_SECRET_SIGNING.*other containers"):
        SigningKeys.from_environment(DEPLOYED)


def test_outside_a_deployed_function_a_key_is_made_for_the_process() -> None:
    keys = SigningKeys.from_environment({})
    assert verified(keys.sign({"sub": "u"}), keys) == {"sub": "u"}


def test_two_containers_of_one_stage_accept_each_other_s_tokens() -> None:
    env = {**DEPLOYED, variable(SIGNING): json.dumps([CURRENT])}
    one, other = SigningKeys.from_environment(env), SigningKeys.from_environment(env)
    assert verified(one.sign({"sub": "ada"}), other) == {"sub": "ada"}
    assert one.public_jwks() == other.public_jwks()


def test_after_a_rotation_the_previous_version_verifies_and_the_current_one_signs() -> None:
    before = SigningKeys.from_environment({**DEPLOYED, variable(SIGNING): json.dumps([PREVIOUS])})
    after = SigningKeys.from_environment(
        {**DEPLOYED, variable(SIGNING): json.dumps([CURRENT, PREVIOUS])}
    )
    token = before.sign({"sub": "ada"})
    assert verified(token, after) == {"sub": "ada"}
    assert after.active != before.active
    assert len(after.kids) == 2


def test_a_short_or_malformed_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        SigningKeys.from_environment({variable(SIGNING): json.dumps(["short"])})
    with pytest.raises(ConfigurationError, match="JSON array"):
        SigningKeys.from_environment({variable(SIGNING): CURRENT})


def test_a_deployed_auth_mfa_without_its_secret_refuses_to_start() -> None:
    with pytest.raises(MfaKeyMissing, match=r"TCTF_SECRET_SEALING.*other containers"):
        SealingKeys.from_environment(DEPLOYED)


def test_two_containers_of_one_stage_open_each_other_s_sealed_secrets() -> None:
    env = {**DEPLOYED, variable(SEALING): json.dumps([CURRENT])}
    one, other = SealingKeys.from_environment(env), SealingKeys.from_environment(env)
    assert other.open("user-1", one.seal("user-1", "JBSWY3DPEHPK3PXP")) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(InvalidTag):
        other.open("user-2", one.seal("user-1", "JBSWY3DPEHPK3PXP"))


def test_two_processes_without_a_secret_do_not_share_a_key() -> None:
    sealed = SealingKeys.from_environment({}).seal("user-1", "JBSWY3DPEHPK3PXP")
    with pytest.raises(InvalidTag):
        SealingKeys.from_environment({}).open("user-1", sealed)


def test_after_a_rotation_secrets_sealed_under_the_previous_version_still_open() -> None:
    sealed = SealingKeys.from_environment({variable(SEALING): json.dumps([PREVIOUS])}).seal(
        "user-1", "JBSWY3DPEHPK3PXP"
    )
    after = SealingKeys.from_environment({variable(SEALING): json.dumps([CURRENT, PREVIOUS])})
    assert after.open("user-1", sealed) == "JBSWY3DPEHPK3PXP"
    resealed = after.seal("user-1", "JBSWY3DPEHPK3PXP")
    only_current = SealingKeys.from_environment({variable(SEALING): json.dumps([CURRENT])})
    assert only_current.open("user-1", resealed) == "JBSWY3DPEHPK3PXP"


def test_a_secret_sealed_under_the_previous_version_is_sealed_again_under_the_current() -> None:
    sealed = SealingKeys.from_environment({variable(SEALING): json.dumps([PREVIOUS])}).seal(
        "user-1", "JBSWY3DPEHPK3PXP"
    )
    after = SealingKeys.from_environment({variable(SEALING): json.dumps([CURRENT, PREVIOUS])})
    resealed = after.resealed("user-1", sealed)
    assert resealed is not None and after.resealed("user-1", resealed) is None
    next_rotation = SealingKeys.from_environment(
        {variable(SEALING): json.dumps([secrets.token_urlsafe(48), CURRENT])}
    )
    assert next_rotation.open("user-1", resealed) == "JBSWY3DPEHPK3PXP"


def test_a_configured_mfa_key_must_hold_32_bytes() -> None:
    with pytest.raises(MfaKeyInvalid, match="32 bytes"):
        SealingKeys.from_environment({"TCTF_MFA_KEY": "c2hvcnQ"})


def test_a_version_of_the_secret_derives_the_key_it_always_derived() -> None:
    """Pinned: a change to the derivation would strand every live token of a stage."""
    keys = SigningKeys.from_seeds(["a" * 20 + "known-answer-seed-0123456789"])
    assert keys.active == "RxCBFDldnait-_6hr7Tj8uYmqIOm6bgQeFhbri1a8u8"
    assert keys.public_jwks()["keys"][0]["x"] == "nTzWCniDWNgxoTeq2sZvXgPqT6_NPHX06VGeSg4g92U"
