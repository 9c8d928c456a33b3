"""The auth_mfa domain's errors."""

from __future__ import annotations

from bus import ConfigurationError


class MfaKeyInvalid(ConfigurationError):
    """`TCTF_MFA_KEY`, the key TOTP secrets are sealed with, is not a 32-byte base64url key."""
