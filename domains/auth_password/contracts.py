"""What auth_password publishes, and its typed client for the one answer other domains need
inside a request (does this password open this account?): the only module they may import.

The check is a call to auth_password's internal route, never a read of its table and never
a projection of hashes from events: a hash is a secret, and secrets do not travel in facts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from bus.errors import TransientError
from bus.messages import Event

if TYPE_CHECKING:
    from bus.context import ServiceClient

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


async def check_password(services: ServiceClient, email: str, password: str) -> PasswordCheckResult:
    """Ask auth_password; `TransientError` if it does not answer as its contract says."""
    answer = await services.request(
        "auth_password", "POST", VERIFICATIONS_PATH, PasswordCheck(email=email, password=password)
    )
    if answer.status != 200:
        raise TransientError(f"auth_password answered the password check with {answer.status}")
    return PasswordCheckResult.model_validate_json(answer.body)
