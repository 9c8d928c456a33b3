"""What auth_mfa publishes, and its typed client for the answer sign-in needs inside a
request (is this code right for this user?): the only module other domains may import.

The check is a call to auth_mfa's internal route: a TOTP secret or a recovery code's hash
never leaves auth_mfa's table, so no other domain could answer it from a projection.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bus.client import Operation
from bus.messages import Event

#: auth_mfa's internal route answering `MfaCheck`.
MFA_VERIFICATIONS_PATH = "/internal/auth/mfa/verifications"


class MfaEnabled(Event):
    """A user confirmed a TOTP authenticator: signing in now takes a second step."""

    type = "MFA_ENABLED"

    user_id: str


class MfaDisabled(Event):
    """A user turned MFA off (with a code), or their account was erased."""

    type = "MFA_DISABLED"

    user_id: str


class RecoveryCodeUsed(Event):
    """One of a user's single-use recovery codes was spent; `remaining` are left."""

    type = "RECOVERY_CODE_USED"

    user_id: str
    remaining: int


class SecondFactor(BaseModel):
    """A TOTP code or a recovery code: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, min_length=1, max_length=16, repr=False)
    recovery_code: str | None = Field(default=None, min_length=1, max_length=64, repr=False)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("give either a code or a recovery_code")
        return self


class MfaCheck(SecondFactor):
    """Does this code pass `user_id`'s second factor? The body of the internal route. A
    passing code is spent: it passes once."""

    user_id: str = Field(min_length=1, max_length=64)


class MfaCheckResult(BaseModel):
    valid: bool


#: Check (and spend) a second factor: auth_mfa's internal route, as callers see it:
#: `await ctx.client("auth_mfa").call(CHECK_SECOND_FACTOR, MfaCheck(...))`.
CHECK_SECOND_FACTOR = Operation(
    "auth_mfa", "POST", MFA_VERIFICATIONS_PATH, MfaCheck, MfaCheckResult
)
