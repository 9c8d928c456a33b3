"""The token issuer's signing keys: one active key signs, every key not yet retired still
verifies and is published in the JWK set, so a rotation never strands a live token.

Private keys never enter a table or an event. A deployed stage derives them from the
domain's secret `signing` (`bus.secrets`: random text Secrets Manager generates for the
stage): one P-256 key per version of it, the current version's signing, the previous one's
still verifying, so every container signs and verifies with the same keys and a rotation of
the secret strands no live token. `TCTF_SIGNING_KEYS` (a JWK set with private parts) may
give the keys instead. With neither, a deployed function refuses to start; under `tctf run`
and in tests, one process, a key is generated for it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from bus import secrets
from bus.errors import ConfigurationError

#: ECDSA P-256 with SHA-256: small keys and signatures, accepted by API Gateway.
ALGORITHM = "ES256"
#: The domain's secret the keys are derived from (`Domain(secrets=[SECRET])`).
SECRET = "signing"
#: HKDF's context: keys derived for signing tokens, never to be reused for anything else.
_DERIVATION_INFO = b"tctf auth_core token signing key"
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
    def from_seeds(cls, seeds: list[str]) -> SigningKeys:
        """One key per version of the secret, the first (current) one signing."""
        keys = [secrets.derived_signing_key(SECRET, seed, _DERIVATION_INFO) for seed in seeds]
        return cls(keys, str(keys[0].kid))

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SigningKeys:
        """`TCTF_SIGNING_KEYS` (JWK set JSON; the active key is `TCTF_SIGNING_KEY_ID`, or the
        last), else the keys of the secret's versions, else — outside a deployed function —
        a key generated for this process."""
        from joserfc.jwk import KeySet

        env = os.environ if env is None else env
        raw = env.get("TCTF_SIGNING_KEYS")
        if not raw:
            seeds = _seeds(env)
            if seeds is not None:
                return cls.from_seeds(seeds)
            _log.warning("no TCTF_SIGNING_KEYS: signing with a key generated for this process")
            return cls.generate()
        keys = list(KeySet.import_key_set(json.loads(raw)).keys)
        if not keys or any(not k.is_private or k.kid is None for k in keys):
            raise ConfigurationError("TCTF_SIGNING_KEYS must hold private keys, each with a kid")
        return cls(keys, env.get("TCTF_SIGNING_KEY_ID") or str(keys[-1].kid))

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


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Refuse what `SigningKeys.from_environment` would refuse, without deriving a key (so
    a deployed function's init imports no joserfc or cryptography for it)."""
    env = os.environ if env is None else env
    if not env.get("TCTF_SIGNING_KEYS"):
        _seeds(env)


def _seeds(env: Mapping[str, str]) -> list[str] | None:
    return secrets.shared_versions(
        SECRET,
        env,
        lambda variable: ConfigurationError(
            f"no signing keys: a deployed auth_core needs {variable} (its stage's secret, "
            "read at init) or TCTF_SIGNING_KEYS; a key of its own would not verify on its "
            "other containers"
        ),
    )


def _new_key() -> Any:
    from joserfc.jwk import ECKey

    return ECKey.generate_key("P-256", auto_kid=True)
