"""What the social domain publishes: the only module other domains may import."""

from __future__ import annotations

from bus.messages import Event


class UserFollowed(Event):
    """`follower_id` now follows `followee_id`."""

    type = "USER_FOLLOWED"

    follower_id: str
    followee_id: str


class UserUnfollowed(Event):
    """`follower_id` no longer follows `followee_id`."""

    type = "USER_UNFOLLOWED"

    follower_id: str
    followee_id: str


class PostCreated(Event):
    """A user posted; `text` is public to anyone who may read the post."""

    type = "POST_CREATED"

    post_id: str
    user_id: str
    text: str
    created_at: str


class PostDeleted(Event):
    """A post was deleted: every projection of it is erased."""

    type = "POST_DELETED"

    post_id: str
    user_id: str
