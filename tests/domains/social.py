"""The social domain over HTTP in one test: the identity domains and social behind the local
gateway on the in-memory transport, signed-in members, and social's own items to inspect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus.clock import ManualClock
from bus.http import HttpResponse
from bus.storage.memory import InMemoryTable
from bus.testing import Harness
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.social.app import domain as social
from domains.users.app import domain as users
from tests.domains.identity import Client, Identity


@dataclass(frozen=True)
class Member:
    user_id: str
    token: str
    email: str


@dataclass
class Social(Identity):
    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.h.clock, ManualClock)
        return self.h.clock

    async def join(self, name: str) -> Member:
        """A signed-up, signed-in member named `name` (e-mail `name@example.com`)."""
        email = f"{name.lower()}@example.com"
        user_id, session = await self.member(email, name)
        return Member(user_id, str(session["access_token"]), email)

    async def as_(self, who: Member, method: str, path: str, body: Any = None) -> HttpResponse:
        """`who` calls a route; whatever it causes is settled before the answer returns."""
        answer = await self.call(method, path, body, token=who.token)
        await self.h.settle()
        return answer

    async def follow(self, who: Member, whom: Member) -> HttpResponse:
        return await self.as_(who, "PUT", f"/social/following/{whom.user_id}")

    async def post(self, who: Member, text: str) -> str:
        created = await self.as_(who, "POST", "/social/posts", {"text": text})
        assert created.status == 201, created.json()
        return str(created.json()["post_id"])

    async def feed(self, who: Member, query: str = "") -> list[str]:
        """The texts of the first page of `who`'s feed."""
        answer = await self.as_(who, "GET", f"/social/feed{query}")
        assert answer.status == 200, answer.json()
        return [p["text"] for p in answer.json()["items"]]

    def facts(self, event_type: str) -> list[dict[str, Any]]:
        return [dict(e.data_dict()) for e in self.h.published_of(event_type)]

    def profile(self, user_id: str) -> dict[str, Any]:
        [profile] = [i for i in self.items(f"USER#{user_id}") if i["SK"] == "PROFILE"]
        return profile

    def items(self, prefix: str = "") -> list[dict[str, Any]]:
        """social's business items whose PK starts with `prefix`: not its idempotency
        records or outbox, which a duplicate may touch without being an effect."""
        table = self.h.runtime.tables["social"]
        assert isinstance(table, InMemoryTable)
        return sorted(
            (
                i
                for i in table.scan()
                if str(i["PK"]).startswith(prefix)
                and not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))
            ),
            key=lambda i: (i["PK"], i["SK"]),
        )


@asynccontextmanager
async def social_platform(**harness: Any) -> AsyncIterator[Social]:
    async with Harness(
        users, auth_password, auth_core, messaging_consumers, social, **harness
    ) as h:
        yield Social(h, Client(HttpApp(gateway_router(h.runtime))))
