"""The token issuer's signing keys: one active key signs, every key not yet retired still
verifies and is published in the JWK set, so a rotation never strands a live token.

Private keys never enter a table or an event. On AWS they come from the function's
environment (`TCTF_SIGNING_KEYS`, a JWK set with private parts, filled from a secret store);
without it, as under `tctf run` and in tests, one key is generated for the process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from bus.errors import ConfigurationError

#: ECDSA P-256 with SHA-256: small keys and signatures, accepted by API Gateway.
ALGORITHM = "ES256"
_log = logging.getLogger("tctf.auth_core")


class SigningKeys:
    """A key ring: `active` signs; `rotate()` adds a new active key; `retire(kid)` drops an
    old one once every token it signed has expired."""

    def __init__(self, keys: list[Any], active: str) -> None:
        self._keys = {key.kid: key for key in keys}
        if active not in self._keys:
            raise ConfigurationError(f"the active signing key {active!r} is not in the key set")
        self.active = active

    @classmethod
    def generate(cls) -> SigningKeys:
        key = _new_key()
        return cls([key], key.kid)

    @classmethod
    def from_environment(cls) -> SigningKeys:
        """`TCTF_SIGNING_KEYS` (JWK set JSON; the active key is `TCTF_SIGNING_KEY_ID`, or the
        last), else a key generated for this process."""
        from joserfc.jwk import KeySet

        raw = os.environ.get("TCTF_SIGNING_KEYS")
        if not raw:
            _log.warning("no TCTF_SIGNING_KEYS: signing with a key generated for this process")
            return cls.generate()
        import json

        keys = list(KeySet.import_key_set(json.loads(raw)).keys)
        if not keys or any(not k.is_private or k.kid is None for k in keys):
            raise ConfigurationError("TCTF_SIGNING_KEYS must hold private keys, each with a kid")
        return cls(keys, os.environ.get("TCTF_SIGNING_KEY_ID") or str(keys[-1].kid))

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def rotate(self) -> str:
        """Sign with a new key from now on; the old one keeps verifying until retired."""
        key = _new_key()
        self._keys[key.kid] = key
        self.active = key.kid
        return str(key.kid)

    def retire(self, kid: str) -> None:
        """Stop publishing `kid`: tokens it signed no longer verify."""
        if kid == self.active:
            raise ConfigurationError(f"{kid} signs tokens now: rotate before retiring it")
        self._keys.pop(kid, None)

    def sign(self, claims: dict[str, Any]) -> str:
        from joserfc import jwt

        key = self._keys[self.active]
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)

    def public_jwks(self) -> dict[str, Any]:
        """The JWK set the gateway verifies with: public parts only."""
        return {
            "keys": [
                {**key.as_dict(private=False), "use": "sig", "alg": ALGORITHM}
                for key in self._keys.values()
            ]
        }


def _new_key() -> Any:
    from joserfc.jwk import ECKey

    return ECKey.generate_key("P-256", auto_kid=True)
