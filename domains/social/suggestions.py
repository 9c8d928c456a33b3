"""People you may know: the followers of a user's followers, ranked by how many of the
user's followers each one follows (their mutual count)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from domains.social.graph import Edge, Graph, id_set, incoming_pages, outgoing_pages

#: A user's followers looked at, at most: bounds the work for an account with many.
FOLLOWERS_SAMPLED = 100
#: Followers of each of those looked at, at most.
SECOND_HOP_SAMPLED = 200


@dataclass(frozen=True)
class Suggestion:
    user_id: str
    #: How many of the user's followers this person follows.
    mutual: int


async def people_you_may_know(graph: Graph, user_id: str, *, limit: int) -> list[Suggestion]:
    """At most `limit` suggestions, most mutual first (ties by id), never the user, anyone
    they follow, anyone they block or anyone blocking them."""
    followers = await id_set(incoming_pages(graph, Edge.FOLLOWS, user_id), most=FOLLOWERS_SAMPLED)
    mutual: Counter[str] = Counter()
    for follower in sorted(followers):
        second_hop = incoming_pages(graph, Edge.FOLLOWS, follower)
        mutual.update(await id_set(second_hop, most=SECOND_HOP_SAMPLED))
    if not mutual:
        return []
    excluded = {user_id}
    excluded |= await id_set(outgoing_pages(graph, Edge.FOLLOWS, user_id))
    excluded |= await id_set(outgoing_pages(graph, Edge.BLOCKS, user_id))
    excluded |= await id_set(incoming_pages(graph, Edge.BLOCKS, user_id))
    ranked = sorted(
        (Suggestion(candidate, count) for candidate, count in mutual.items()),
        key=lambda s: (-s.mutual, s.user_id),
    )
    return [s for s in ranked if s.user_id not in excluded][:limit]
