"""Every domain of the platform together behind the local gateway on the in-memory transport,
driven as people drive it (HTTP requests, the WebSocket, the local mailbox, an authenticator
app), and the summary of what it ended with: named by people and texts rather than by ids,
so that two runs of one story compare."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
import pyotp
import pytest

import domains
from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router, gateway_websockets
from bus import TransientError
from bus.clock import ManualClock, isoformat
from bus.http import HttpResponse
from bus.middleware import Delivery, Handler
from bus.testing import Harness
from domains.auth_admin.app import ADMIN_EMAIL_VARIABLE
from domains.communication.unsubscribe import SECRET_VARIABLE
from tests.asgi import WebSocketSession, asgi_websocket
from tests.domains.identity import Client

ADMIN_EMAIL = "root@example.com"
PASSWORD = "correct horse battery staple"
UNSUBSCRIBE_SECRET = "scenario-unsubscribe-secret-0123456789abcdef"
MINUTE = 60.0
#: The time step of a TOTP code: a code is spent once per step.
TOTP_STEP = 30.0
_TOKEN_IN_LINK = re.compile(r"#token=([A-Za-z0-9_\-.~%]+)")


@dataclass(frozen=True)
class Member:
    name: str
    email: str
    user_id: str
    token: str
    session_id: str
    refresh_token: str
    #: When the access token expires, on the platform's clock.
    expires_at: float


@dataclass
class Platform:
    """The running platform and the people who have joined it, by name."""

    h: Harness
    client: Client
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.h.clock, ManualClock)
        return self.h.clock

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> HttpResponse:
        """One request; whatever it causes is settled before the answer returns."""
        answer = await self.client.request(method, path, body, token=token)
        await self.h.settle()
        return answer

    async def as_(self, who: Member, method: str, path: str, body: Any = None) -> HttpResponse:
        """A request as `who`, with a fresh access token as a client keeps one."""
        who = await self.fresh(who)
        return await self.call(method, path, body, token=who.token)

    async def fresh(self, who: Member) -> Member:
        """`who` with an access token good for a minute more, refreshed if need be (retries
        in the fault mode move the clock on by minutes)."""
        who = self.members.get(who.name, who)
        if self.clock.now() < who.expires_at - MINUTE:
            return who
        refreshed = await self.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": who.refresh_token}
        )
        assert refreshed.status == 200, refreshed.json()
        return self._signed_in(who.name, who.email, who.user_id, refreshed.json())

    def _signed_in(self, name: str, email: str, user_id: str, session: dict[str, Any]) -> Member:
        member = Member(
            name,
            email,
            user_id,
            session["access_token"],
            session["session_id"],
            session["refresh_token"],
            self.clock.now() + session["expires_in"],
        )
        self.members[name] = member
        return member

    async def ok(self, who: Member, method: str, path: str, body: Any = None) -> Any:
        """The JSON of a request that must succeed."""
        answer = await self.as_(who, method, path, body)
        assert 200 <= answer.status < 300, (method, path, answer.status, answer.body)
        return answer.json() if answer.body else None

    async def advance(self, seconds: float) -> None:
        """Move the clock, then let every schedule now due fire and its work settle."""
        self.clock.advance(seconds)
        await self.h.settle()

    # -- the mailbox ---------------------------------------------------------------------

    async def letters(self, email: str) -> list[dict[str, Any]]:
        """Every letter the local mailer kept for `email`, oldest first, over all pages."""
        found: list[dict[str, Any]] = []
        query: dict[str, str] = {"to": email, "limit": "100"}
        while True:
            page = await self.call("GET", f"/mail?{urlencode(query)}")
            assert page.status == 200, page.json()
            found += page.json()["items"]
            if page.json()["cursor"] is None:
                return found
            query["cursor"] = page.json()["cursor"]

    async def link_token(self, email: str) -> str:
        """The token of the newest letter to `email` that carries a one-time link."""
        tokens = [
            m.group(1) for x in await self.letters(email) if (m := _TOKEN_IN_LINK.search(x["text"]))
        ]
        assert tokens, f"no letter with a link reached {email}"
        return tokens[-1]

    # -- identity ------------------------------------------------------------------------

    async def join(self, name: str, email: str | None = None) -> Member:
        """Sign up, set the password from the invitation in the mailbox, sign in."""
        email = email or f"{name.lower()}@example.com"
        created = await self.call("POST", "/users", {"email": email, "name": name})
        assert created.status == 201, created.json()
        password = {"token": await self.link_token(email), "password": PASSWORD}
        set_ = await self.call("POST", "/auth/password/set", password)
        assert set_.status == 204, set_.json()
        session = await self.call("POST", "/auth/sessions", {"email": email, "password": PASSWORD})
        assert session.status == 201, session.json()
        return self._signed_in(name, email, str(created.json()["user_id"]), session.json())

    def totp(self, secret: str) -> str:
        return pyotp.TOTP(secret).at(int(self.clock.now()))

    async def enrol_mfa(self, who: Member) -> str:
        """Enrol an authenticator and confirm it with its first code: its secret."""
        secret = str((await self.ok(who, "POST", "/auth/mfa/totp"))["secret"])
        await self.ok(who, "POST", "/auth/mfa/totp/confirmation", {"code": self.totp(secret)})
        await self.advance(TOTP_STEP)  # the confirming code is spent
        return secret

    async def sign_in_with_mfa(self, who: Member, secret: str) -> Member:
        """Password first, then the authenticator's code: the member with the new session."""
        first = await self.call(
            "POST", "/auth/sessions", {"email": who.email, "password": PASSWORD}
        )
        assert first.status == 201 and "access_token" not in first.json(), first.json()
        second = await self.call(
            "POST",
            "/auth/sessions/mfa",
            {"mfa_challenge": first.json()["mfa_challenge"], "code": self.totp(secret)},
        )
        assert second.status == 201, second.json()
        return self._signed_in(who.name, who.email, who.user_id, second.json())

    def live(self, who: Member) -> AbstractAsyncContextManager[WebSocketSession]:
        """`who`'s WebSocket connection for live messages, open for the block."""
        who = self.members[who.name]
        return asgi_websocket(self.client.app, "/messages/live", f"token={who.token}".encode())

    def name_of(self, user_id: str) -> str:
        """A member's name for their id (ids differ between runs, names do not)."""
        [name] = [m.name for m in self.members.values() if m.user_id == user_id]
        return name


class FailingOnce:
    """Middleware under which each of `handlers` (full names, `domain.handler`) fails the
    first time it is handed each message, as a throttled dependency makes it fail;
    `failed` keeps which handler failed on which envelope."""

    def __init__(self, handlers: frozenset[str]) -> None:
        self.handlers = handlers
        self.failed: set[tuple[str, str]] = set()

    def __call__(self, handler: Handler) -> Handler:
        async def failing_once(delivery: Delivery) -> None:
            attempt = (delivery.subscription.name, delivery.envelope.id)
            if delivery.subscription.name in self.handlers and attempt not in self.failed:
                self.failed.add(attempt)
                raise TransientError(f"{attempt[0]} fails once on purpose (scenario fault mode)")
            await handler(delivery)

        return failing_once


@asynccontextmanager
async def whole_platform(
    monkeypatch: pytest.MonkeyPatch, **harness: Any
) -> AsyncIterator[Platform]:
    """Every domain in `domains.names()` behind the gateway, HTTP and WebSocket; the admin
    is bootstrapped from `TCTF_ADMIN_EMAIL` as in production."""
    monkeypatch.setenv(ADMIN_EMAIL_VARIABLE, ADMIN_EMAIL)
    monkeypatch.setenv(SECRET_VARIABLE, UNSUBSCRIBE_SECRET)
    every_domain = [domains.load(name) for name in domains.names()]
    async with Harness(*every_domain, **harness) as h:
        router = gateway_router(h.runtime)
        app = HttpApp(router, websockets=gateway_websockets(h.runtime, router))
        yield Platform(h, Client(app))


def at(platform: Platform, seconds_from_now: float) -> str:
    return isoformat(platform.clock.now() + seconds_from_now)


def renamed(platform: Platform, value: Any, names: dict[str, str]) -> Any:
    """`value` with every member's id replaced by their name and every other id in `names`
    by its name there (ids differ between runs; what they name does not)."""
    text = orjson.dumps(value).decode()
    for member in platform.members.values():
        text = text.replace(member.user_id, member.name)
    for id_, name in names.items():
        text = text.replace(id_, name)
    return orjson.loads(text)
