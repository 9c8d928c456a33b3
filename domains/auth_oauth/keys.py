"""The provider's signing keys for access and ID tokens, and the JWK set that verifies them.

Private keys never enter a table or an event. A deployed stage derives them from the
domain's secret `signing` (`bus.secrets`: random text Secrets Manager generates for the
stage): one P-256 key per version of it, the current version's signing, the previous one's
still verifying, so every container signs and verifies with the same keys and a rotation of
the secret strands no live token. `TCTF_OAUTH_SIGNING_KEYS` (a JWK set with private parts;
the last key signs) may give the keys instead. With neither, a deployed function refuses to
start; under `tctf run` and in tests, one process, a key is generated for it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from bus import secrets
from domains.auth_oauth.errors import ProviderMisconfigured

#: ECDSA P-256 with SHA-256: the algorithm the discovery document names for ID tokens.
ALGORITHM = "ES256"
#: The domain's secret the keys are derived from (`Domain(secrets=[SECRET])`).
SECRET = "signing"
#: HKDF's context: keys derived for the provider's tokens, never to be reused elsewhere.
_DERIVATION_INFO = b"tctf auth_oauth token signing key"
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
    def from_seeds(cls, seeds: list[str]) -> ProviderKeys:
        """One key per version of the secret (current first), the current one signing."""
        keys = [secrets.derived_signing_key(SECRET, seed, _DERIVATION_INFO) for seed in seeds]
        return cls(keys[::-1])

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ProviderKeys:
        """`TCTF_OAUTH_SIGNING_KEYS`, else the keys of the secret's versions, else — outside
        a deployed function — a key generated for this process."""
        from joserfc.jwk import ECKey, KeySet

        env = os.environ if env is None else env
        raw = env.get("TCTF_OAUTH_SIGNING_KEYS")
        if raw:
            return cls(list(KeySet.import_key_set(json.loads(raw)).keys))
        seeds = _seeds(env)
        if seeds is not None:
            return cls.from_seeds(seeds)
        _log.warning("no signing secret: signing with a key made for this process")
        return cls([ECKey.generate_key("P-256", auto_kid=True)])

    @property
    def signing_kid(self) -> str:
        return str(self._keys[-1].kid)

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


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Refuse what `ProviderKeys.from_environment` would refuse, without deriving a key (so
    a deployed function's init imports no joserfc or cryptography for it)."""
    env = os.environ if env is None else env
    if not env.get("TCTF_OAUTH_SIGNING_KEYS"):
        _seeds(env)


def _seeds(env: Mapping[str, str]) -> list[str] | None:
    return secrets.shared_versions(
        SECRET,
        env,
        lambda variable: ProviderMisconfigured(
            f"no signing keys: a deployed auth_oauth needs {variable} (its stage's secret, "
            "read at init) or TCTF_OAUTH_SIGNING_KEYS; a key of its own would not verify "
            "on its other containers"
        ),
    )
