"""What auth_password publishes, and its typed client for the one answer other domains need
inside a request (does this password open this account?): the only module they may import.

The check is a call to auth_password's internal route, never a read of its table and never
a projection of hashes from events: a hash is a secret, and secrets do not travel in facts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bus.client import Operation
from bus.messages import Event

#: auth_password's internal route answering `PasswordCheck`.
VERIFICATIONS_PATH = "/internal/auth/password/verifications"


class PasswordSet(Event):
    """A user chose their first password, with the link sent at sign-up."""

    type = "PASSWORD_SET"

    user_id: str


class PasswordChanged(Event):
    """A user's password changed: by a reset link, or signed in with the old one."""

    type = "PASSWORD_CHANGED"

    user_id: str
    how: Literal["reset", "change"]


class PasswordResetRequested(Event):
    """A reset link left for a known account (unknown addresses leave no trace)."""

    type = "PASSWORD_RESET_REQUESTED"

    user_id: str


class PasswordCheck(BaseModel):
    """Does `password` open the account of `email`? The body of the internal route."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=1024)
    password: str = Field(max_length=1024, repr=False)


class PasswordCheckResult(BaseModel):
    """The account of the address (None if it has none) and whether the password opens it.
    Internal: the public sign-in answer never tells the two failures apart."""

    user_id: str | None
    matches: bool


#: Does this password open this account? auth_password's internal route, as callers see it:
#: `await ctx.client("auth_password").call(CHECK_PASSWORD, PasswordCheck(...))`.
CHECK_PASSWORD = Operation(
    "auth_password", "POST", VERIFICATIONS_PATH, PasswordCheck, PasswordCheckResult
)
