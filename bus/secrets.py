"""Secrets a domain declares (`Domain(..., secrets=["signing"])`): how their values reach it.

A runtime hands a secret's versions to the domain in the environment variable
`TCTF_SECRET_<NAME>` (`-` as `_`): a JSON array of strings, the current version first, then
the previous one while it still verifies or opens what the current one did not make. On AWS
the function reads them from Secrets Manager once, at init (`adapters.lambda_.boot`); a
deployed function (`AWS_LAMBDA_FUNCTION_NAME` set) without them must refuse to start rather
than make up a value of its own, which its other containers would not share.

The derivations turn a version into a key, so that every container of a stage derives the
same one; `cryptography` and `joserfc` are imported only when one is made, off the kernel's
import.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from bus.errors import ConfigurationError

if TYPE_CHECKING:
    from joserfc.jwk import ECKey

#: Set by Lambda in every function: the process is one of many containers of a deployment.
DEPLOYED_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"


def variable(name: str) -> str:
    """The environment variable carrying secret `name`'s versions."""
    return "TCTF_SECRET_" + name.upper().replace("-", "_")


def deployed(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a deployed function, where a value made up for the
    process would differ from its other containers'."""
    return DEPLOYED_VARIABLE in (os.environ if env is None else env)


def versions(name: str, env: Mapping[str, str] | None = None) -> list[str] | None:
    """Secret `name`'s versions, current first; None if the runtime handed none."""
    raw = (os.environ if env is None else env).get(variable(name))
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    if not isinstance(found, list) or not found or not all(isinstance(v, str) for v in found):
        raise ConfigurationError(
            f"{variable(name)} must be a JSON array of the secret's versions, current first"
        )
    return found


def shared_versions(
    name: str, env: Mapping[str, str] | None, refusal: Callable[[str], Exception]
) -> list[str] | None:
    """Secret `name`'s versions, current first, which every container of a stage shares.
    None outside a deployed function when the runtime handed none: the caller makes a value
    for its one process. A deployed function without them raises `refusal(variable(name))`
    instead, since a value of its own would differ from its other containers'."""
    found = versions(name, env)
    if found is None and deployed(env):
        raise refusal(variable(name))
    return found


#: The fewest characters a version of a secret may hold: at least 128 bits of letters and
#: digits, well above what a guess could reach.
MIN_SEED_CHARACTERS = 32
#: The order of P-256's base point (SEC 2 v2, 2.4.2): a private key is an integer below it.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def derived_bytes(name: str, seed: str, info: bytes, length: int = 32) -> bytes:
    """`length` bytes from one version `seed` of secret `name` (HKDF-SHA256, `info` naming
    the one use they are for): the same in every container that reads the same secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if len(seed) < MIN_SEED_CHARACTERS:
        raise ConfigurationError(
            f"the {name} secret must hold at least {MIN_SEED_CHARACTERS} characters"
        )
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
        seed.encode()
    )


def derived_signing_key(name: str, seed: str, info: bytes) -> ECKey:
    """The P-256 key (joserfc) of one version `seed` of secret `name`, the same in every
    container: 384 derived bits reduced into [1, n-1] (FIPS 186-5 A.2.1, the extra 128 bits
    making the bias negligible); its kid is the key's RFC 7638 thumbprint."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc.jwk import ECKey

    number = int.from_bytes(derived_bytes(name, seed, info, length=48), "big")
    private = ec.derive_private_key(number % (_P256_ORDER - 1) + 1, ec.SECP256R1())
    return ECKey.import_key(private, {"kid": ECKey.import_key(private).thumbprint()})
