"""Search over HTTP in one test: the identity domains and search behind the local gateway on
the in-memory transport, signed-in members, and social's facts published as social would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bus.envelope import Envelope
from bus.http import HttpResponse
from bus.storage.memory import InMemoryTable
from bus.testing import Harness
from domains.search.app import domain as search
from domains.social.contracts import PostCreated, PostDeleted
from tests.domains.identity import Identity, identity


@dataclass
class Search:
    people: Identity
    token: str = ""

    @property
    def h(self) -> Harness:
        return self.people.h

    async def sign_in(self, email: str = "reader@example.com", name: str = "Reader") -> str:
        """A signed-in member whose token `find` uses; their id."""
        user_id, session = await self.people.member(email, name)
        self.token = str(session["access_token"])
        return user_id

    async def find(self, q: str | None, **params: Any) -> HttpResponse:
        query = {"q": q, **params} if q is not None else params
        return await self.people.call("GET", f"/search?{urlencode(query)}", token=self.token)

    async def ids(self, q: str, **params: Any) -> list[str]:
        answer = await self.find(q, **params)
        assert answer.status == 200, answer.json()
        return [hit["id"] for hit in answer.json()["items"]]

    async def post(self, post_id: str, text: str, user_id: str = "u-author") -> Envelope:
        fact = PostCreated(post_id=post_id, user_id=user_id, text=text, created_at="2026-01-01")
        envelope = await self.h.publish(fact, source="social")
        await self.h.settle()
        return envelope

    async def delete_post(self, post_id: str, user_id: str = "u-author") -> Envelope:
        envelope = await self.h.publish(
            PostDeleted(post_id=post_id, user_id=user_id), source="social"
        )
        await self.h.settle()
        return envelope

    def index_items(self) -> list[dict[str, Any]]:
        """search's own items: not its idempotency records or outbox, which a duplicate may
        touch without being an effect."""
        table = self.h.runtime.tables["search"]
        assert isinstance(table, InMemoryTable)
        return sorted(
            (i for i in table.scan() if not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))),
            key=lambda i: (i["PK"], i["SK"]),
        )


@asynccontextmanager
async def search_platform(**harness: Any) -> AsyncIterator[Search]:
    async with identity(search, **harness) as people:
        yield Search(people)
