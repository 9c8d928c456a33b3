"""The token endpoint's refusals, in the shape RFC 6749 section 5.2 gives them."""

from __future__ import annotations

from typing import Literal

from bus import ConfigurationError

ErrorCode = Literal[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_response_type",
]


class OAuthError(Exception):
    """A request refused with an OAuth 2.0 error code: 400, or 401 for `invalid_client`
    (RFC 6749 5.2). The description is for the client's developer, never a secret."""

    def __init__(self, error: ErrorCode, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error: ErrorCode = error
        self.description = description

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400


class ProviderMisconfigured(ConfigurationError):
    """The provider's signing keys or issuer are missing or unusable: a deployed function
    fails its init rather than sign what its other containers would not verify."""
