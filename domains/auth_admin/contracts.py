"""Events the auth_admin domain publishes: the only module other domains may import."""

from __future__ import annotations

from bus.messages import Event


class UserDisabled(Event):
    """An admin disabled a user: their sessions end and they cannot sign in."""

    type = "USER_DISABLED"

    user_id: str


class UserEnabled(Event):
    """An admin enabled a disabled user again."""

    type = "USER_ENABLED"

    user_id: str
