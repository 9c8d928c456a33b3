"""The whole platform in one scenario, over HTTP and the WebSocket through the local gateway:
three people sign up, set passwords from their mail, one signs in with MFA, they follow each
other, post, search, message each other live, one pays an invoice, an admin sends a
campaign. What they see and receive is asserted, no one reaches another's private data on
any signed-in route, and under the transport's faults the story ends in the same state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

import domains
from bus.memory import Faults
from bus.openapi import openapi_document
from bus.topology import Topology
from tests.scenario.platform import (
    ADMIN_EMAIL,
    MINUTE,
    FailingOnce,
    Member,
    Platform,
    at,
    renamed,
    whole_platform,
)

POSTS = {
    "Ada": "Baking sourdough bread this morning",
    "Bob": "A long bicycle ride along the river",
    "Carol": "Carol bakes rye bread for the neighbours",
}
MESSAGES = [("Ada", "Bob", "Fancy a ride on Sunday?"), ("Bob", "Ada", "Yes, at nine!")]
MESSAGES += [("Carol", "Bob", "Bread is ready, come by")]
FIRST_POST_LETTER = "Achievement unlocked: First post"
#: Deliveries doubled, queues read in any order, messages held back, and (through
#: `FailingOnce`) every handler failing at its first try at each message.
FAULTS = Faults(duplicate_rate=0.3, reorder=True, max_delay=2.0)


@dataclass
class Story:
    """What the story left behind: the platform, and what people saw on the way."""

    platform: Platform
    posts: dict[str, str]  # post id -> text
    frames: dict[str, list[dict[str, Any]]]  # member name -> live frames received
    campaign_id: str

    def member(self, name: str) -> Member:
        return self.platform.members[name]


async def tell(p: Platform) -> Story:
    """The story, each step settled before the next as a person waits for an answer."""
    root = await p.join("Root", ADMIN_EMAIL)
    ada, bob, carol = [await p.join(name) for name in ("Ada", "Bob", "Carol")]
    secret = await p.enrol_mfa(carol)
    carol = await p.sign_in_with_mfa(carol, secret)

    for who, whom in ((ada, bob), (bob, ada), (bob, carol), (carol, bob)):
        await p.ok(who, "PUT", f"/social/following/{whom.user_id}")
    posts = {}
    for who in (ada, bob, carol):
        created = await p.ok(who, "POST", "/social/posts", {"text": POSTS[who.name]})
        posts[str(created["post_id"])] = POSTS[who.name]

    frames: dict[str, list[dict[str, Any]]] = {}
    ada, bob, carol = [await p.fresh(who) for who in (ada, bob, carol)]
    async with p.live(ada) as ada_live, p.live(bob) as bob_live, p.live(carol) as carol_live:
        connections = {"Ada": ada_live, "Bob": bob_live, "Carol": carol_live}
        for connection in connections.values():
            assert (await connection.receive())["type"] == "websocket.accept"
        for sender, recipient, text in MESSAGES:
            body = {"recipient_id": p.members[recipient].user_id, "text": text}
            await p.ok(p.members[sender], "POST", "/messages", body)
        for name, connection in connections.items():
            frames[name] = [m for m in connection.pending() if m["type"] == "websocket.send"]

    await p.ok(
        carol,
        "PUT",
        f"/billing/customers/{carol.user_id}/payment-method",
        {"payment_method": "pm_card_visa"},
    )
    await p.ok(carol, "POST", f"/billing/customers/{carol.user_id}/subscription", {"plan": "pro"})

    window = {"kind": "signed_up", "signed_up_from": at(p, -3600), "signed_up_until": at(p, 60)}
    campaign = await p.ok(
        root,
        "POST",
        "/communication/campaigns",
        {
            "subject": "Spring news",
            "body": "Hello from the team.",
            "segment": window,
            "send_at": at(p, MINUTE),
        },
    )
    await p.advance(MINUTE)
    return Story(p, posts, frames, str(campaign["campaign_id"]))


async def summary(story: Story) -> dict[str, Any]:
    """What each person can see now, over HTTP and in their mail, named so that two runs
    compare."""
    p = story.platform
    people: dict[str, Any] = {}
    invoices: dict[str, str] = {}
    for name in ("Ada", "Bob", "Carol"):
        who = story.member(name)
        feed = await p.ok(who, "GET", "/social/feed")
        suggestions = await p.ok(who, "GET", "/social/suggestions")
        bread = await p.ok(who, "GET", "/search?q=bread&type=post")
        prefix = await p.ok(who, "GET", "/search?q=car&type=profile")
        threads = {}
        for conversation in (await p.ok(who, "GET", "/conversations"))["items"]:
            path = f"/conversations/{conversation['conversation_id']}/messages"
            page = await p.ok(who, "GET", path)
            threads[conversation["with_user_id"]] = sorted(
                (m["sender_id"], m["text"]) for m in page["items"]
            )
        awarded = await p.ok(who, "GET", f"/users/{who.user_id}/achievements")
        billed = (await p.ok(who, "GET", f"/billing/customers/{who.user_id}/invoices"))["items"]
        invoices |= {i["invoice_id"]: f"{name}'s invoice {n}" for n, i in enumerate(billed, 1)}
        people[name] = {
            "feed": [(post["user_id"], post["text"]) for post in feed["items"]],
            "suggestions": [(s["user_id"], s["mutual"]) for s in suggestions["items"]],
            "search bread": sorted(hit["id"] for hit in bread["items"]),
            "search car": [hit["id"] for hit in prefix["items"]],
            "conversations": threads,
            "live": sorted(
                (frame["message"]["sender_id"], frame["message"]["text"])
                for frame in (orjson.loads(m["text"]) for m in story.frames[name])
            ),
            "achievements": sorted(a["achievement_id"] for a in awarded["items"]),
            "invoices": [(i["amount"], i["currency"], i["status"]) for i in billed],
        }
    mail = {
        m.name: sorted(x["subject"] for x in await p.letters(m.email)) for m in p.members.values()
    }
    campaign = await p.ok(
        story.member("Root"), "GET", f"/communication/campaigns/{story.campaign_id}"
    )
    seen = {
        "people": people,
        "mail": mail,
        "campaign": {"status": campaign["status"], "progress": campaign["progress"]},
    }
    return dict(renamed(p, seen, story.posts | invoices))


#: What the story ends with, whatever the transport does on the way.
EXPECTED: dict[str, Any] = {
    "people": {
        "Ada": {
            "feed": [["Bob", POSTS["Bob"]], ["Ada", POSTS["Ada"]]],
            "suggestions": [["Carol", 1]],  # follows Bob, who follows Ada
            "search bread": [POSTS["Ada"], POSTS["Carol"]],  # "Baking", "bakes": stemmed
            "search car": ["Carol"],  # the last word typed matches as a prefix
            "conversations": {"Bob": [["Ada", MESSAGES[0][2]], ["Bob", MESSAGES[1][2]]]},
            "live": [["Bob", MESSAGES[1][2]]],  # a sender is not echoed
            "achievements": ["first_post"],
            "invoices": [],
        },
        "Bob": {
            "feed": [["Carol", POSTS["Carol"]], ["Bob", POSTS["Bob"]], ["Ada", POSTS["Ada"]]],
            "suggestions": [],  # follows everyone who follows his followers
            "search bread": [POSTS["Ada"], POSTS["Carol"]],
            "search car": ["Carol"],
            "conversations": {
                "Ada": [["Ada", MESSAGES[0][2]], ["Bob", MESSAGES[1][2]]],
                "Carol": [["Carol", MESSAGES[2][2]]],
            },
            "live": [["Ada", MESSAGES[0][2]], ["Carol", MESSAGES[2][2]]],
            "achievements": ["first_post"],
            "invoices": [],
        },
        "Carol": {
            "feed": [["Carol", POSTS["Carol"]], ["Bob", POSTS["Bob"]]],
            "suggestions": [["Ada", 1]],
            "search bread": [POSTS["Ada"], POSTS["Carol"]],
            "search car": ["Carol"],
            "conversations": {"Bob": [["Carol", MESSAGES[2][2]]]},
            "live": [],
            "achievements": ["first_invoice_paid", "first_post"],
            "invoices": [[1500, "EUR", "paid"]],
        },
    },
    "mail": {
        "Root": ["Choose your password", "Spring news", "Welcome, Root"],
        "Ada": [FIRST_POST_LETTER, "Choose your password", "Spring news", "Welcome, Ada"],
        "Bob": [FIRST_POST_LETTER, "Choose your password", "Spring news", "Welcome, Bob"],
        "Carol": [
            "Achievement unlocked: First invoice paid",
            FIRST_POST_LETTER,
            "Choose your password",
            "Receipt for invoice Carol's invoice 1",
            "Spring news",
            "Welcome, Carol",
        ],
    },
    "campaign": {
        "status": "delivered",
        "progress": {"queued": 4, "sent": 4, "failed": 0, "all_queued": True},
    },
}


async def test_the_whole_platform_in_one_story(monkeypatch: pytest.MonkeyPatch) -> None:
    async with whole_platform(monkeypatch) as p:
        story = await tell(p)
        seen = await summary(story)
        signed_in = [e.data_dict() for e in p.h.published_of("SIGNED_IN")]
        mfa = [e.data_dict() for e in p.h.published_of("MFA_ENABLED")]
        parked = await dead_letters(p)
    for name in ("Ada", "Bob", "Carol"):
        assert seen["people"][name] == EXPECTED["people"][name], name
    assert seen["mail"] == EXPECTED["mail"]
    assert seen["campaign"] == EXPECTED["campaign"]
    assert mfa == [{"user_id": story.member("Carol").user_id}]
    assert len(signed_in) == 5  # four with a password, Carol again with her code
    assert not any(parked.values()), parked


async def dead_letters(p: Platform) -> dict[tuple[str, str], list[Any]]:
    """Every domain's parked events and tasks, where there are any."""
    found: dict[tuple[str, str], list[Any]] = {}
    for queue in p.runtime.topology.queues:
        if letters := await p.runtime.transport.dead_letters(queue.domain, queue.purpose):
            found[(queue.domain, queue.purpose)] = letters
    return found


async def test_under_the_transports_faults_the_story_ends_in_the_same_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every_handler = Topology.from_domains(domains.load(name) for name in domains.names())
    flaky = FailingOnce(frozenset(s.handler for s in every_handler.subscriptions))
    async with whole_platform(monkeypatch, seed=7, faults=FAULTS, middleware=[flaky]) as p:
        seen = await summary(await tell(p))
        parked = await dead_letters(p)
        handled = [(o.handler, o.envelope.id) for o in p.h.outcomes if o.envelope]
    # Every handler failed on its first try at every message, and then handled it.
    assert flaky.failed == {(o.handler, o.envelope.id) for o in p.h.handled() if o.envelope}
    assert len(handled) > len(set(handled))  # some were delivered twice
    assert seen == EXPECTED
    assert not parked, parked


#: Signed-in routes that name another member on purpose: the caller's own relation to them,
#: or posts, which every signed-in member may read unless blocked. Every other signed-in
#: route that names a resource is someone's private data.
NOT_PRIVATE = {
    ("PUT", "/social/following/{user_id}"): "the caller follows whom",
    ("DELETE", "/social/following/{user_id}"): "the caller unfollows whom",
    ("PUT", "/social/blocks/{user_id}"): "the caller blocks whom",
    ("DELETE", "/social/blocks/{user_id}"): "the caller unblocks whom",
    ("GET", "/social/users/{user_id}/posts"): "posts are for every signed-in member",
    ("GET", "/social/users/{user_id}/posts/{post_id}"): "posts are for every signed-in member",
}
#: A valid body for each such route that takes one, so that no answer is a 422 for the
#: body standing in for the authorization check.
BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/billing/customers/{user_id}/payment-method"): {"payment_method": "pm_card_visa"},
    ("POST", "/billing/customers/{user_id}/subscription"): {"plan": "business"},
    ("PATCH", "/billing/customers/{user_id}/subscription"): {"plan": "business"},
    ("PATCH", "/users/{user_id}"): {"name": "Mallory"},
}


def routes_naming_a_resource() -> list[tuple[str, str, bool]]:
    """Every signed-in operation of the merged OpenAPI whose path names a resource: method,
    path template, and whether it takes a body."""
    document = openapi_document([domains.load(name) for name in domains.names()])
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names_one = any(p["in"] == "path" for p in operation.get("parameters", []))
            if operation.get("security") and names_one:
                found.append((method.upper(), path, "requestBody" in operation))
    return found


async def resources_of(p: Platform, story: Story, name: str) -> dict[str, str]:
    """The path parameters that name `name`'s own resources (the admin's for admin routes)."""
    who = await p.fresh(story.member(name))
    [conversation, *_] = (await p.ok(who, "GET", "/conversations"))["items"]
    [post_id] = [post_id for post_id, text in story.posts.items() if text == POSTS[name]]
    root = story.member("Root")
    client = await p.ok(
        root,
        "POST",
        "/oauth/clients",
        {"name": "Notes app", "redirect_uris": ["https://app.example.com/callback"]},
    )
    return {
        "user_id": who.user_id,
        "post_id": post_id,
        "session_id": who.session_id,
        "conversation_id": conversation["conversation_id"],
        "campaign_id": story.campaign_id,
        "client_id": client["client_id"],
        "role": "admin",
    }


async def test_no_member_reads_or_changes_another_members_private_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routes = routes_naming_a_resource()
    private = [(m, path, body) for m, path, body in routes if (m, path) not in NOT_PRIVATE]
    async with whole_platform(monkeypatch) as p:
        story = await tell(p)
        before = await summary(story)
        answers, signed_out = {}, {}
        for caller, owner in (("Ada", "Carol"), ("Carol", "Ada")):
            names = await resources_of(p, story, owner)
            for method, template, takes_body in private:
                path = template.format(**names)
                body = BODIES[(method, template)] if takes_body else None
                answer = await p.as_(story.member(caller), method, path, body)
                answers[(caller, method, template)] = (answer.status, answer.headers)
                signed_out[(owner, method, template)] = (await p.call(method, path, body)).status
        after = await summary(story)
    assert {(m, path) for m, path, body in private if body} <= BODIES.keys()
    assert len(private) >= 20 and set(NOT_PRIVATE) <= {(m, path) for m, path, _ in routes}
    statuses = {route: status for route, (status, _) in answers.items()}
    assert set(statuses.values()) <= {403, 404}, statuses  # never 2xx, nor a 422 first
    assert set(signed_out.values()) == {401}, signed_out
    assert {h["content-type"] for _, h in answers.values()} == {"application/problem+json"}
    assert after == before == EXPECTED  # nothing of theirs changed, nothing of theirs leaked
