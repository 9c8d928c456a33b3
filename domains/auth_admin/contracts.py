"""Events the auth_admin domain publishes: the only module other domains may import."""

from __future__ import annotations

from typing import Literal

from bus.messages import Event

#: The roles an admin may grant; a route asks for one with `Access(roles=(...,))` and the
#: access token carries them in its `roles` claim.
Role = Literal["admin"]
ROLES: tuple[Role, ...] = ("admin",)


class UserDisabled(Event):
    """An admin disabled a user: their sessions end and they cannot sign in."""

    type = "USER_DISABLED"

    user_id: str


class UserEnabled(Event):
    """An admin enabled a disabled user again."""

    type = "USER_ENABLED"

    user_id: str


class RoleGranted(Event):
    """A user holds a role from now on: access tokens issued after this carry it."""

    type = "ROLE_GRANTED"

    user_id: str
    role: str
    #: Orders one user's role changes (higher is later): a consumer keeps the latest, however
    #: the queue orders their delivery.
    revision: int


class RoleRevoked(Event):
    """A user no longer holds a role: access tokens issued after this lack it."""

    type = "ROLE_REVOKED"

    user_id: str
    role: str
    #: Orders one user's role changes (higher is later): a consumer keeps the latest, however
    #: the queue orders their delivery.
    revision: int
