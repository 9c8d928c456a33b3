"""A function reads its domain's secrets from Secrets Manager once, at init: two containers
of one stage booted on the same provisioned secret accept each other's tokens and open each
other's sealed TOTP secrets, and a rotation strands neither. A deployed function without
its secret does not start."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from adapters.aws.secrets import read_secrets
from adapters.lambda_.boot import build
from bus import ConfigurationError
from bus.secrets import variable
from domains.auth_core.keys import SECRET as SIGNING
from domains.auth_core.keys import SigningKeys
from domains.auth_mfa.sealing import SECRET as SEALING
from domains.auth_mfa.sealing import SealingKeys


@pytest.fixture
def secretsmanager(moto_endpoint: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def provisioned(secretsmanager: Any) -> Iterator[str]:
    """A stage's secret as the stack makes it: random text, named for the stage."""
    name = f"tctf-{uuid.uuid4().hex[:8]}-auth_core-{SIGNING}"
    secretsmanager.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))
    yield name
    secretsmanager.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def container(name: str, secret: str, moto_endpoint: str) -> dict[str, str]:
    """What one container's init reads: the secret's versions, as its environment holds them."""
    found = read_secrets({name: secret}, region="us-east-1", endpoint_url=moto_endpoint)
    return {"AWS_LAMBDA_FUNCTION_NAME": "tctf-auth_core", variable(name): json.dumps(found[name])}


def claims(token: str, keys: SigningKeys) -> dict[str, Any]:
    jwks = KeySet.import_key_set(keys.public_jwks())  # type: ignore[arg-type]
    return dict(jwt.decode(token, jwks).claims)


def test_two_containers_on_one_secret_accept_each_other_s_tokens_across_a_rotation(
    provisioned: str, secretsmanager: Any, moto_endpoint: str
) -> None:
    first = SigningKeys.from_environment(container(SIGNING, provisioned, moto_endpoint))
    second = SigningKeys.from_environment(container(SIGNING, provisioned, moto_endpoint))
    assert claims(first.sign({"sub": "ada"}), second) == {"sub": "ada"}
    before = first.sign({"sub": "grace"})
    secretsmanager.put_secret_value(SecretId=provisioned, SecretString=secrets.token_urlsafe(48))
    after = SigningKeys.from_environment(container(SIGNING, provisioned, moto_endpoint))
    assert claims(before, after) == {"sub": "grace"}
    assert after.active not in first.kids


def test_two_containers_on_one_secret_open_each_other_s_sealed_totp_secrets(
    provisioned: str, secretsmanager: Any, moto_endpoint: str
) -> None:
    first = SealingKeys.from_environment(container(SEALING, provisioned, moto_endpoint))
    second = SealingKeys.from_environment(container(SEALING, provisioned, moto_endpoint))
    sealed = first.seal("user-1", "JBSWY3DPEHPK3PXP")
    assert second.open("user-1", sealed) == "JBSWY3DPEHPK3PXP"
    secretsmanager.put_secret_value(SecretId=provisioned, SecretString=secrets.token_urlsafe(48))
    after = SealingKeys.from_environment(container(SEALING, provisioned, moto_endpoint))
    assert after.open("user-1", sealed) == "JBSWY3DPEHPK3PXP"


def test_boot_puts_the_secret_s_versions_where_the_domain_reads_them(
    provisioned: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable(SIGNING), "restored after the test")
    env = {
        "TCTF_DOMAIN": "auth_core",
        "TCTF_TRANSPORT": "memory",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "TCTF_SECRETS": json.dumps({SIGNING: provisioned}),
    }
    build(env).close()
    (current,) = json.loads(os.environ[variable(SIGNING)])
    assert len(current) >= 32


def test_a_secret_the_function_cannot_read_fails_its_init(moto_endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read its secrets.*GetSecretValue"):
        read_secrets(
            {SIGNING: "tctf-nowhere-signing"}, region="us-east-1", endpoint_url=moto_endpoint
        )


@pytest.mark.parametrize(
    ("domain", "message"), [("auth_core", "no signing keys"), ("auth_mfa", "no key to seal")]
)
def test_a_deployed_function_without_its_secret_does_not_start(domain: str, message: str) -> None:
    """In a fresh process, as Lambda's init is: the domain checks its key as it loads."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TCTF_")},
        "AWS_LAMBDA_FUNCTION_NAME": f"tctf-{domain}",
        "TCTF_LOG_JSON": "0",
    }
    boot = (
        "from adapters.lambda_.boot import build; "
        f"build({{'TCTF_DOMAIN': {domain!r}, 'TCTF_TRANSPORT': 'memory'}})"
    )
    done = subprocess.run([sys.executable, "-c", boot], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert message in done.stderr.splitlines()[-1]
