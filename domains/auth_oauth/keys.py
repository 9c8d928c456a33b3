"""The provider's signing key for access and ID tokens, and the JWK set that verifies them.

The private key never enters a table or an event. On AWS it comes from the function's
environment (`TCTF_OAUTH_SIGNING_KEYS`, a JWK set with private parts, filled from a secret
store; the last key signs, every key verifies); without it, as under `tctf run` and in tests,
one key is generated for the process.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from domains.auth_oauth.errors import ProviderMisconfigured

#: ECDSA P-256 with SHA-256: the algorithm the discovery document names for ID tokens.
ALGORITHM = "ES256"
_log = logging.getLogger("tctf.auth_oauth")


class ProviderKeys:
    """Every key verifies and is published; the last one signs."""

    def __init__(self, keys: list[Any]) -> None:
        if not keys or any(not key.is_private or key.kid is None for key in keys):
            raise ProviderMisconfigured(
                "TCTF_OAUTH_SIGNING_KEYS must hold private keys, each with a kid"
            )
        self._keys = keys

    @classmethod
    def from_environment(cls) -> ProviderKeys:
        from joserfc.jwk import ECKey, KeySet

        raw = os.environ.get("TCTF_OAUTH_SIGNING_KEYS")
        if not raw:
            _log.warning("no TCTF_OAUTH_SIGNING_KEYS: signing with a key made for this process")
            return cls([ECKey.generate_key("P-256", auto_kid=True)])
        return cls(list(KeySet.import_key_set(json.loads(raw)).keys))

    def sign(self, claims: dict[str, Any], token_type: str = "JWT") -> str:
        from joserfc import jwt

        key = self._keys[-1]
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": token_type}, claims, key)

    def public_jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**key.as_dict(private=False), "use": "sig", "alg": ALGORITHM} for key in self._keys
            ]
        }
