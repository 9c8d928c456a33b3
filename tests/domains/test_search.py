"""GET /search over HTTP: posts and profiles indexed from social's and users' facts, matched
with accents and case folded, stems, a prefix for the last word, ranked by BM25, and gone
the moment they are deleted."""

from __future__ import annotations

import pytest

from domains.social.contracts import PostCreated, PostDeleted
from domains.users.contracts import UserUpdated
from tests.domains.search import search_platform


async def test_accents_and_case_are_folded_both_ways() -> None:
    async with search_platform() as s:
        await s.sign_in()
        await s.post("p1", "Crème brûlée at the CAFÉ in Zürich")
        assert await s.ids("creme ") == ["p1"]
        assert await s.ids("café ") == ["p1"]
        assert await s.ids("ZURICH ") == ["p1"]
        assert await s.ids("BRÛLÉE ") == ["p1"]


async def test_words_match_through_their_english_stem() -> None:
    async with search_platform() as s:
        await s.sign_in()
        await s.post("p1", "She was running two marathons")
        await s.post("p2", "A quiet evening")
        assert await s.ids("runs ") == ["p1"]
        assert await s.ids("marathon ") == ["p1"]


async def test_the_last_word_typed_matches_as_a_prefix() -> None:
    async with search_platform() as s:
        await s.sign_in()
        await s.post("p1", "Training for marathons in winter")
        await s.post("p2", "Marmalade on toast")
        assert await s.ids("marat", type="post") == ["p1"]
        assert sorted(await s.ids("mar", type="post")) == ["p1", "p2"]
        # a space after the word ends it: no longer a prefix
        assert await s.ids("marat ", type="post") == []
        # only the last word is a prefix
        assert await s.ids("wint toa", type="post") == ["p2"]


async def test_bm25_orders_as_computed_by_hand() -> None:
    """Three posts, N=3, average length 3. "apple": df=2, idf = ln(1 + 1.5/2.5) = ln 1.6.
    p2 ("apple apple", tf 2, length 2): 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 2/3)) = 1.5172...
    p1 ("apple banana cherry", tf 1, length 3): 2.2 / (1 + 1.2) = 1."""
    async with search_platform() as s:
        await s.sign_in()
        await s.post("p1", "apple banana cherry")
        await s.post("p2", "apple apple")
        await s.post("p3", "banana kiwi mango grape")
        answer = await s.find("apple ", type="post")
    hits = answer.json()["items"]
    assert [h["id"] for h in hits] == ["p2", "p1"]
    assert hits[0]["score"] == pytest.approx(0.470004 * 4.4 / 2.9, abs=1e-5)
    assert hits[1]["score"] == pytest.approx(0.470004, abs=1e-5)
    assert hits[0] == {
        "type": "post",
        "id": "p2",
        "score": hits[0]["score"],
        "user_id": "u-author",
        "text": "apple apple",
        "created_at": "2026-01-01",
        "name": None,
    }


async def test_a_deleted_post_is_gone_from_results_at_once() -> None:
    async with search_platform() as s:
        await s.sign_in()
        await s.post("p1", "Sunset over the harbour")
        await s.post("p2", "Harbour seals at dawn")
        await s.delete_post("p1")
        assert await s.ids("harbour ") == ["p2"]
        assert await s.ids("sunset ") == []


async def test_a_delete_delivered_before_its_create_keeps_the_post_out() -> None:
    async with search_platform() as s:
        await s.sign_in()
        deleted = await s.delete_post("p1")
        created = deleted._replace(
            id="00000000-0000-7000-8000-000000000001",
            type="POST_CREATED",
            time="2000-01-01T00:00:00.000Z",
            data=PostCreated(post_id="p1", user_id="u-author", text="ghost", created_at="2000"),
        )
        await s.h.runtime.publisher.publish([created])
        await s.h.settle()
        assert [o.handler for o in s.h.handled("search.index_post")]
        assert await s.ids("ghost ") == []


async def test_profiles_are_found_by_name_and_follow_their_updates() -> None:
    async with search_platform() as s:
        ada, ada_session = await s.people.member("ada@example.com", "Ada Lovelace")
        await s.sign_in()
        assert await s.ids("lovelace ", type="profile") == [ada]
        # e-mail addresses are neither indexed nor shown
        assert await s.ids("example ", type="profile") == []
        renamed = await s.people.call(
            "PATCH", f"/users/{ada}", {"name": "Ada King"}, token=ada_session["access_token"]
        )
        assert renamed.status == 200, renamed.json()
        await s.h.settle()
        assert await s.ids("lovelace ", type="profile") == []
        answer = await s.find("king ", type="profile")
    assert answer.json()["items"] == [
        {
            "type": "profile",
            "id": ada,
            "score": answer.json()["items"][0]["score"],
            "user_id": ada,
            "text": None,
            "created_at": None,
            "name": "Ada King",
        }
    ]


async def test_an_update_delivered_late_does_not_undo_a_newer_one() -> None:
    async with search_platform() as s:
        await s.sign_in()
        first = await s.h.publish(
            UserUpdated(user_id="u1", email="x@example.com", name="Grace Hopper", plan="free"),
            source="users",
        )
        await s.h.settle()
        newer = await s.h.publish(
            UserUpdated(user_id="u1", email="x@example.com", name="Grace Murray", plan="free"),
            source="users",
        )
        await s.h.settle()
        await s.h.runtime.publisher.publish([first._replace(id=first.id[:-1] + "f")])
        await s.h.settle()
        assert newer.time >= first.time
        assert await s.ids("murray ", type="profile") == ["u1"]
        assert await s.ids("hopper ", type="profile") == []


async def test_a_deleted_user_leaves_the_profile_results() -> None:
    async with search_platform() as s:
        ada, ada_session = await s.people.member("ada@example.com", "Ada Lovelace")
        reader = await s.sign_in()
        token = ada_session["access_token"]
        assert (await s.people.call("DELETE", f"/users/{ada}", token=token)).status == 204
        await s.h.settle()
        assert await s.ids("ada ", type="profile") == []
        assert await s.ids("reader ", type="profile") == [reader]


async def test_pages_follow_the_cursor_through_every_hit_once() -> None:
    async with search_platform() as s:
        await s.sign_in()
        for n in range(25):
            await s.h.publish(
                PostCreated(
                    post_id=f"p{n:02}", user_id="u", text="tea " * (n % 4 + 1), created_at="x"
                ),
                source="social",
            )
        await s.h.settle()
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
            answer = await s.find("tea ", **params)
            assert answer.status == 200, answer.json()
            seen += [h["id"] for h in answer.json()["items"]]
            cursor = answer.json()["cursor"]
            pages += 1
            if cursor is None:
                break
    assert pages == 3
    assert sorted(seen) == [f"p{n:02}" for n in range(25)]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "!!! ..."}, "no word"),
        ({"q": " ".join(["w"] * 17)}, "at most 16 words"),
        ({"q": "x" * 257}, "q"),
        ({"q": "tea", "type": "video"}, "type"),
        ({"q": "tea", "limit": 0}, "limit"),
        ({"q": "tea", "cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
    ],
)
async def test_a_bad_query_is_a_422_problem(params: dict[str, object], detail: str) -> None:
    async with search_platform() as s:
        await s.sign_in()
        q = params.pop("q", None)
        answer = await s.find(str(q) if q is not None else None, **params)
    assert answer.status == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.body.decode()


async def test_a_cursor_from_another_search_is_refused() -> None:
    async with search_platform() as s:
        await s.sign_in()
        for n in range(3):
            await s.post(f"p{n}", "tea")
        first = await s.find("tea ", limit=1)
        cursor = first.json()["cursor"]
        assert cursor is not None
        other = await s.find("coffee ", limit=1, cursor=cursor)
    assert other.status == 422
    assert "cursor" in other.json()["detail"]


async def test_searching_needs_a_signed_in_caller() -> None:
    async with search_platform() as s:
        answer = await s.find("tea")
    assert answer.status == 401
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_deleted_post_that_never_was_created_leaves_no_trace() -> None:
    async with search_platform() as s:
        await s.sign_in()
        await s.h.publish(PostDeleted(post_id="p9", user_id="u"), source="social")
        await s.h.settle()
        assert await s.ids("p9") == []
