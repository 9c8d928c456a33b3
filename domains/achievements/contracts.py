"""What the achievements domain publishes: the only module other domains may import."""

from __future__ import annotations

from bus.messages import Event


class AchievementUnlocked(Event):
    """A user earned an achievement (once, ever): `achievement_id` names the rule, `title`
    is what a person reads."""

    type = "ACHIEVEMENT_UNLOCKED"

    user_id: str
    achievement_id: str
    title: str
    unlocked_at: str
