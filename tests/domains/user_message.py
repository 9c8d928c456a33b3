"""user_message over HTTP and WebSocket in one test: the identity domains and user_message
behind the local gateway on the in-memory transport, signed-in members, and the follow facts
social would publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router, gateway_websockets
from bus.clock import ManualClock
from bus.envelope import Envelope
from bus.http import HttpResponse
from bus.storage.memory import InMemoryTable
from bus.testing import Harness
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.social.contracts import UserFollowed, UserUnfollowed
from domains.user_message.app import domain as user_message
from domains.users.app import domain as users
from tests.asgi import WebSocketSession, asgi_websocket
from tests.domains.identity import Client, Identity

LIVE = "/messages/live"


@dataclass
class Messaging(Identity):
    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.h.clock, ManualClock)
        return self.h.clock

    @property
    def table(self) -> InMemoryTable:
        table = self.h.runtime.tables["user_message"]
        assert isinstance(table, InMemoryTable)
        return table

    async def user(self, email: str) -> tuple[str, str]:
        """A signed-in member: their id and access token."""
        user_id, session = await self.member(email)
        return user_id, str(session["access_token"])

    async def follow(self, follower: str, followee: str) -> Envelope:
        envelope = await self.h.publish(
            UserFollowed(follower_id=follower, followee_id=followee), source="social"
        )
        await self.h.settle()
        return envelope

    async def unfollow(self, follower: str, followee: str) -> Envelope:
        envelope = await self.h.publish(
            UserUnfollowed(follower_id=follower, followee_id=followee), source="social"
        )
        await self.h.settle()
        return envelope

    async def befriend(self, first: str, second: str) -> None:
        await self.follow(first, second)
        await self.follow(second, first)

    async def send(self, token: str, recipient_id: str, text: str) -> HttpResponse:
        answer = await self.call(
            "POST", "/messages", {"recipient_id": recipient_id, "text": text}, token=token
        )
        await self.h.settle()
        return answer

    def live(self, token: str | None) -> AbstractAsyncContextManager[WebSocketSession]:
        query = b"" if token is None else f"token={token}".encode()
        return asgi_websocket(self.client.app, LIVE, query)

    def facts(self, event_type: str) -> list[dict[str, Any]]:
        return [dict(e.data_dict()) for e in self.h.published_of(event_type)]

    def items(self, prefix: str) -> list[dict[str, Any]]:
        return sorted(
            (i for i in self.table.scan() if str(i["PK"]).startswith(prefix)),
            key=lambda i: (i["PK"], i["SK"]),
        )


@asynccontextmanager
async def messaging_platform(**harness: Any) -> AsyncIterator[Messaging]:
    async with Harness(
        users, auth_password, auth_core, messaging_consumers, user_message, **harness
    ) as h:
        router = gateway_router(h.runtime)
        app = HttpApp(router, websockets=gateway_websockets(h.runtime, router))
        yield Messaging(h, Client(app))
