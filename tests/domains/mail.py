"""messaging_consumers over HTTP in one test: the identity domains, billing and
messaging_consumers behind the local gateway on the in-memory transport, the local mailbox
read back, and SES's notifications posted as a platform caller posts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus.http import HttpRequest, HttpResponse
from bus.storage.memory import InMemoryTable
from bus.testing import Harness
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.billing.app import domain as billing
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tests.asgi import asgi_request
from tests.domains.billing import Billing, SignedClient

SES_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aws" / "ses-docs"


@dataclass
class Mail(Billing):
    def items(self, prefix: str) -> list[dict[str, Any]]:
        table = self.h.runtime.tables["messaging_consumers"]
        assert isinstance(table, InMemoryTable)
        return [i for i in table.scan() if str(i["PK"]).startswith(prefix)]

    def letters(self, to: str) -> list[dict[str, Any]]:
        """What the local mailer kept for `to`, oldest first."""
        return sorted(self.items(f"MAILBOX#{to}"), key=lambda i: i["SK"])

    async def read_mailbox(self, query: str, client: tuple[str, int] | None = None) -> HttpResponse:
        """`GET /mail?query` over ASGI, from the peer `client` if named."""
        app = self.client.app
        return await asgi_request(app, "GET", "/mail", query=query.encode(), client=client)

    async def sign_up_with(self, body: dict[str, Any]) -> HttpResponse:
        answer = await self.call("POST", "/users", body)
        await self.h.settle()
        return answer

    async def notify(self, body: bytes) -> HttpResponse:
        """An SES notification posted to the INTERNAL route, as a platform caller would."""
        answer = await self.h.router.handle(
            HttpRequest("POST", "/mail/notifications", body=body), internal=True
        )
        await self.h.settle()
        return answer


@asynccontextmanager
async def mail_platform(**harness: Any) -> AsyncIterator[Mail]:
    domains = (users, auth_password, auth_core, messaging_consumers, billing)
    async with Harness(*domains, **harness) as h:
        yield Mail(h, SignedClient(HttpApp(gateway_router(h.runtime))))
