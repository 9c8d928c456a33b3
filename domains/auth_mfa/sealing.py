"""The keys TOTP secrets are sealed with: AES-256-GCM (`cryptography`), each secret bound to
its user's id, so a sealed secret copied to another user's item does not open.

A deployed stage derives the keys from the domain's secret `sealing` (`bus.secrets`: random
text Secrets Manager generates for the stage), one key per version: the current one seals,
and a secret sealed under the previous version still opens, so a rotation loses no
authenticator; a secret opened under the previous version is sealed again under the
current one when its code next passes. `TCTF_MFA_KEY` (32 bytes, base64url) may give the
one key instead. With
neither, a deployed function refuses to start; under `tctf run` and in tests, one process,
a key is made for it. Imported on first use: off the cold start of other domains.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bus import secrets as domain_secrets
from domains.auth_mfa.errors import MfaKeyInvalid, MfaKeyMissing

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: The domain's secret the keys are derived from (`Domain(secrets=[SECRET])`).
SECRET = "sealing"
#: HKDF's context: keys derived for sealing TOTP secrets, never to be reused elsewhere.
_DERIVATION_INFO = b"tctf auth_mfa totp sealing key"
_NONCE_BYTES = 12


class SealingKeys:
    """AES-256-GCM keys: the first seals, any opens what it sealed."""

    def __init__(self, keys: list[bytes]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._ciphers: list[AESGCM] = [AESGCM(key) for key in keys]

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SealingKeys:
        env = os.environ if env is None else env
        configured = env.get("TCTF_MFA_KEY")
        if configured is not None:
            return cls([_decoded(configured)])
        seeds = _seeds(env)
        if seeds is not None:
            return cls([domain_secrets.derived_bytes(SECRET, s, _DERIVATION_INFO) for s in seeds])
        return cls([secrets.token_bytes(32)])

    def seal(self, associated: str, plaintext: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[0].encrypt(nonce, plaintext.encode(), associated.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, associated: str, sealed: str) -> str:
        """The plaintext, under whichever key sealed it; `InvalidTag` if none did."""
        from cryptography.exceptions import InvalidTag

        raw = base64.b64decode(sealed)
        nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for cipher in self._ciphers[:-1]:
            try:
                return cipher.decrypt(nonce, body, associated.encode()).decode()
            except InvalidTag:
                continue
        return self._ciphers[-1].decrypt(nonce, body, associated.encode()).decode()

    def resealed(self, associated: str, sealed: str) -> str | None:
        """`sealed` sealed again under the current key if an older one sealed it, else
        None: a secret in use moves to the current key before its key's version is gone."""
        from cryptography.exceptions import InvalidTag

        raw = base64.b64decode(sealed)
        try:
            self._ciphers[0].decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated.encode())
        except InvalidTag:
            return self.seal(associated, self.open(associated, sealed))
        return None


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Refuse what `SealingKeys.from_environment` would refuse, without deriving a key (so
    a deployed function's init imports no cryptography for it)."""
    env = os.environ if env is None else env
    if env.get("TCTF_MFA_KEY") is None:
        _seeds(env)


def _seeds(env: Mapping[str, str]) -> list[str] | None:
    return domain_secrets.shared_versions(
        SECRET,
        env,
        lambda variable: MfaKeyMissing(
            f"no key to seal TOTP secrets with: a deployed auth_mfa needs {variable} (its "
            "stage's secret, read at init) or TCTF_MFA_KEY; a key of its own would not "
            "open what its other containers seal"
        ),
    )


def _decoded(configured: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(configured + "=" * (-len(configured) % 4))
    except ValueError as error:
        raise MfaKeyInvalid("TCTF_MFA_KEY is not base64url") from error
    if len(key) != 32:
        raise MfaKeyInvalid(f"TCTF_MFA_KEY must hold 32 bytes, it holds {len(key)}")
    return key
