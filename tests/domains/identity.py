"""The identity domains over HTTP in one test: the ASGI app of `tctf run` (the local gateway
with its bearer-token check) on the in-memory transport, and the steps every flow repeats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus import Domain
from bus.http import HttpResponse
from bus.testing import Harness
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tests.asgi import asgi_request

PASSWORD = "correct horse battery staple"


class Client:
    """Drives the ASGI app as an HTTP client would: bytes in, status, headers, bytes out."""

    def __init__(self, app: HttpApp) -> None:
        self.app = app

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        authorization: str | None = None,
        content_type: str = "application/json",
    ) -> HttpResponse:
        payload = raw if raw is not None else b"" if body is None else orjson.dumps(body)
        headers = [(b"content-type", content_type.encode())]
        if token is not None:
            authorization = f"Bearer {token}"
        if authorization is not None:
            headers.append((b"authorization", authorization.encode()))
        path, _, query = path.partition("?")
        return await asgi_request(self.app, method, path, payload, headers, query.encode())


@dataclass
class Identity:
    """A harness running users, auth_password, auth_core and messaging_consumers behind the
    gateway."""

    h: Harness
    client: Client

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> HttpResponse:
        return await self.client.request(method, path, body, **kw)

    def links(self, template: str) -> list[str]:
        """The tokens of every e-mail of `template` sent so far, oldest first."""
        return [
            e.data_dict()["link"].split("#token=", 1)[1]
            for e in self.h.published_of("SEND_EMAIL")
            if e.data_dict()["template"] == template
        ]

    async def sign_up(self, email: str, name: str = "Ada") -> str:
        created = await self.call("POST", "/users", {"email": email, "name": name})
        assert created.status == 201, created.json()
        await self.h.settle()
        return str(created.json()["user_id"])

    async def set_password(self, token: str, password: str = PASSWORD) -> HttpResponse:
        answer = await self.call(
            "POST", "/auth/password/set", {"token": token, "password": password}
        )
        await self.h.settle()
        return answer

    async def sign_in(self, email: str, password: str = PASSWORD) -> HttpResponse:
        answer = await self.call("POST", "/auth/sessions", {"email": email, "password": password})
        await self.h.settle()
        return answer

    async def member(self, email: str, name: str = "Ada") -> tuple[str, dict[str, Any]]:
        """A signed-up user with a password, signed in: their id and session."""
        user_id = await self.sign_up(email, name)
        assert (await self.set_password(self.links("set-password")[-1])).status == 204
        session = await self.sign_in(email)
        assert session.status == 201, session.json()
        return user_id, session.json()


@asynccontextmanager
async def identity(*more: Domain, **harness: Any) -> AsyncIterator[Identity]:
    """The four identity domains every flow needs, and `more` beside them."""
    async with Harness(users, auth_password, auth_core, messaging_consumers, *more, **harness) as h:
        yield Identity(h, Client(HttpApp(gateway_router(h.runtime))))
