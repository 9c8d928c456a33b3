"""Achievements over HTTP in one test: the identity domains, billing and achievements behind
the local gateway on the in-memory transport; social's facts published as social would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus import Domain, Event
from bus.envelope import Envelope
from bus.http import HttpResponse
from bus.storage.memory import InMemoryTable
from bus.testing import Harness
from domains.achievements.app import domain as achievements
from domains.auth_admin.app import ADMIN_EMAIL_VARIABLE
from domains.auth_admin.app import domain as auth_admin
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.billing.app import domain as billing
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tests.domains.billing import Billing, SignedClient

ADMIN_EMAIL = "root@example.com"


@dataclass
class Achieving(Billing):
    def fact(self, event: Event, source: str = "social") -> Envelope:
        """`event` as its producer would publish it now, not yet sent (to send it later,
        twice, or in another order)."""
        [envelope] = [self.h.runtime.context(source).publish(event)]
        return envelope

    async def deliver(self, *envelopes: Envelope) -> None:
        """Publish the envelopes one at a time, in this order, each settled before the next."""
        for envelope in envelopes:
            await self.h.runtime.publisher.publish([envelope])
            await self.h.settle()

    async def happen(self, event: Event, source: str = "social") -> Envelope:
        envelope = self.fact(event, source)
        await self.deliver(envelope)
        return envelope

    async def achievements(self, user_id: str, token: str, query: str = "") -> HttpResponse:
        return await self.client.get(f"/users/{user_id}/achievements", query, token)

    async def earned(self, user_id: str, token: str) -> list[str]:
        answer = await self.achievements(user_id, token)
        assert answer.status == 200, answer.json()
        return [a["achievement_id"] for a in answer.json()["items"]]

    def unlocked(self) -> list[tuple[str, str]]:
        return [(f["user_id"], f["achievement_id"]) for f in self.facts("ACHIEVEMENT_UNLOCKED")]

    def items(self) -> list[dict[str, Any]]:
        """achievements' own items: not its idempotency records or outbox, which a duplicate
        may touch without being an effect."""
        table = self.h.runtime.tables["achievements"]
        assert isinstance(table, InMemoryTable)
        return sorted(
            (i for i in table.scan() if not str(i["PK"]).startswith(("IDEMPOTENCY#", "OUTBOX#"))),
            key=lambda i: (i["PK"], i["SK"]),
        )


@asynccontextmanager
async def achievements_platform(
    monkeypatch: pytest.MonkeyPatch, engine: Domain = achievements, **harness: Any
) -> AsyncIterator[Achieving]:
    """The platform with `engine` as the achievements domain; `root@example.com` signs up
    as the first admin."""
    monkeypatch.setenv(ADMIN_EMAIL_VARIABLE, ADMIN_EMAIL)
    domains = (users, auth_password, auth_core, messaging_consumers, auth_admin, billing, engine)
    async with Harness(*domains, **harness) as h:
        yield Achieving(h, SignedClient(HttpApp(gateway_router(h.runtime))))
