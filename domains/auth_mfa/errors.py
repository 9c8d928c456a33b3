"""The auth_mfa domain's errors."""

from __future__ import annotations

from bus import ConfigurationError


class MfaKeyInvalid(ConfigurationError):
    """The key TOTP secrets are sealed with is malformed: `TCTF_MFA_KEY` not 32 bytes in
    base64url."""


class MfaKeyMissing(ConfigurationError):
    """A deployed auth_mfa has no key to seal TOTP secrets with."""
