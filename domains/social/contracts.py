"""What the social domain publishes and the tasks it sends itself: the only module other
domains may import."""

from __future__ import annotations

from bus.messages import Event, Task


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


class FanOutPost(Task):
    """Copy a post into the feeds of one page of its author's followers; the page after
    `cursor` sends the next task, so no handler writes more than one page."""

    type = "FAN_OUT_POST"
    domain = "social"

    user_id: str
    post_id: str
    cursor: str | None = None


class ErasePostCopies(Task):
    """Remove a deleted post's copies from its readers' feeds, one page a task."""

    type = "ERASE_POST_COPIES"
    domain = "social"

    post_id: str


class EraseUser(Task):
    """Erase a deleted user's follows, blocks, posts and feed, one batch a task."""

    type = "ERASE_USER"
    domain = "social"

    user_id: str
