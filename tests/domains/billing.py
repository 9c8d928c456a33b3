"""Billing over HTTP in one test: the identity domains and billing behind the local gateway
on the in-memory transport, signed-in members, and webhooks signed as the provider signs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus.clock import ManualClock
from bus.http import HttpResponse
from bus.testing import Harness
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.billing.app import domain as billing
from domains.billing.webhooks import signature_header
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tests.asgi import asgi_request
from tests.domains.identity import Client, Identity

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
DAY = 24 * 3600.0


class SignedClient(Client):
    """A client that can also send the provider's signature, and a query string."""

    async def webhook(self, body: bytes, signature: str | None) -> HttpResponse:
        headers = [(b"content-type", b"application/json")]
        if signature is not None:
            headers.append((b"stripe-signature", signature.encode()))
        return await asgi_request(self.app, "POST", "/billing/webhooks", body, headers)

    async def get(self, path: str, query: str, token: str) -> HttpResponse:
        headers = [(b"authorization", f"Bearer {token}".encode())]
        return await asgi_request(self.app, "GET", path, b"", headers, query.encode())


@dataclass
class Billing(Identity):
    client: SignedClient

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.h.clock, ManualClock)
        return self.h.clock

    async def customer(
        self, email: str, payment_method: str | None = "pm_card_visa"
    ) -> tuple[str, str]:
        """A signed-in member with a saved payment method: their id and access token."""
        user_id, session = await self.member(email)
        token = str(session["access_token"])
        if payment_method is not None:
            saved = await self.call(
                "PUT",
                f"/billing/customers/{user_id}/payment-method",
                {"payment_method": payment_method},
                token=token,
            )
            assert saved.status == 200, saved.json()
        return user_id, token

    async def token(self, email: str) -> str:
        """A fresh access token (one signed in before the clock moved days has expired)."""
        session = await self.sign_in(email)
        assert session.status == 201, session.json()
        return str(session.json()["access_token"])

    async def subscribe(self, user_id: str, token: str, plan: str = "pro") -> HttpResponse:
        answer = await self.call(
            "POST", f"/billing/customers/{user_id}/subscription", {"plan": plan}, token=token
        )
        await self.h.settle()
        return answer

    async def advance(self, seconds: float) -> None:
        """Move the clock, then let every schedule now due fire and its work settle."""
        self.clock.advance(seconds)
        await self.h.settle()

    def facts(self, event_type: str) -> list[dict[str, Any]]:
        return [dict(e.data_dict()) for e in self.h.published_of(event_type)]

    async def send_webhook(
        self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, age: float = 0.0
    ) -> HttpResponse:
        body = orjson.dumps(event)
        signature = signature_header(body, secret, int(self.clock.now() - age))
        answer = await self.client.webhook(body, signature)
        await self.h.settle()
        return answer


@asynccontextmanager
async def billing_platform(**harness: Any) -> AsyncIterator[Billing]:
    async with Harness(
        users, auth_password, auth_core, messaging_consumers, billing, **harness
    ) as h:
        yield Billing(h, SignedClient(HttpApp(gateway_router(h.runtime))))
