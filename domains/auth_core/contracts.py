"""Events the auth_core domain publishes: the only module other domains may import."""

from __future__ import annotations

from typing import Literal

from bus.messages import Event


class SignedIn(Event):
    """A user signed in: a new session (a refresh-token family) began."""

    type = "SIGNED_IN"

    user_id: str
    session_id: str


class SignInFailed(Event):
    """A sign-in to an existing account was refused (unknown addresses leave no event)."""

    type = "SIGN_IN_FAILED"

    user_id: str
    reason: Literal["password", "mfa", "locked", "disabled"]


class SignedOut(Event):
    """A session ended: its refresh tokens no longer work."""

    type = "SIGNED_OUT"

    user_id: str
    session_id: str
    reason: Literal[
        "logout", "password_changed", "user_disabled", "user_deleted", "refresh_token_reused"
    ]


class AccountLocked(Event):
    """Too many failed sign-ins: the account refuses sign-in until `until` (RFC 3339)."""

    type = "ACCOUNT_LOCKED"

    user_id: str
    until: str
