"""Events the users domain publishes: the only module other domains may import."""

from __future__ import annotations

from bus.messages import Event


class UserCreated(Event):
    """A person signed up."""

    type = "USER_CREATED"
    version = 2

    user_id: str
    email: str
    name: str


@UserCreated.upcaster(from_version=1)
def _split_display_name(data: dict[str, object]) -> dict[str, object]:
    """Version 1 called the name `display_name`."""
    data["name"] = data.pop("display_name", "")
    return data
