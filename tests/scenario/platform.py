"""Every domain of the platform together behind the local gateway, driven as people drive it
(HTTP requests, the WebSocket, their mail, an authenticator app), and the summary of what it
ended with: named by people and texts rather than by ids, so that two runs of one story
compare. The platform runs on the in-memory transport under the test harness
(`whole_platform`), or as `tctf run --aws` runs it, on SNS+SQS or EventBridge+SQS and
DynamoDB of a moto server in this process (`whole_platform_on_aws`)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_string, policy
from email.message import EmailMessage
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

import orjson
import pyotp
import pytest

import domains
from adapters.aws.session import AwsSettings
from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router, gateway_websockets
from bus import Domain, TransientError
from bus.clock import ManualClock, isoformat
from bus.http import HttpResponse
from bus.middleware import Delivery, Handler
from bus.runtime import Runtime
from bus.secrets import variable
from bus.testing import Harness
from domains.auth_admin.app import ADMIN_EMAIL_VARIABLE
from domains.communication.unsubscribe import SECRET as UNSUBSCRIBE
from tctf.aws import aws_platform
from tests.asgi import WebSocketSession, asgi_websocket
from tests.domains.identity import Client

ADMIN_EMAIL = "root@example.com"
PASSWORD = "correct horse battery staple"
UNSUBSCRIBE_SECRET = "scenario-unsubscribe-secret-0123456789abcdef"
MINUTE = 60.0
#: The time step of a TOTP code: a code is spent once per step.
TOTP_STEP = 30.0
#: The region of the platform on AWS APIs: one no other test uses, emptied before each run
#: (moto keeps every region of every test in the process).
AWS_REGION = "eu-west-3"
#: The moto services whose state a run leaves in the region.
_MOTO_SERVICES = ("sqs", "sns", "events", "dynamodb", "dynamodbstreams", "ses", "sesv2")
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

    runtime: Runtime
    client: Client
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.runtime.clock, ManualClock)
        return self.runtime.clock

    async def settle(self) -> None:
        """Wait until whatever was asked of the platform is done: schedules now due fired,
        queues drained, outboxes empty."""
        await self.runtime.settle()

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> HttpResponse:
        """One request; whatever it causes is settled before the answer returns."""
        answer = await self.client.request(method, path, body, token=token)
        await self.settle()
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
        await self.settle()

    # -- the mailbox ---------------------------------------------------------------------

    async def letters(self, email: str) -> list[dict[str, Any]]:
        """Every letter the local mailer kept for `email`, oldest first, over all pages:
        each with its `subject` and `text`."""
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


@dataclass
class InMemoryPlatform(Platform):
    """The platform under the test harness: in memory, settled by the harness."""

    h: Harness = field(kw_only=True)

    async def settle(self) -> None:
        await self.h.settle()


@dataclass
class AwsPlatform(Platform):
    """The platform as `tctf run --aws` composes it, its mail sent through the endpoint's
    SES."""

    async def letters(self, email: str) -> list[dict[str, Any]]:
        """Every letter SES sent to `email`, oldest first."""
        found = []
        for message in _ses_sent():
            if email in message.destinations:
                letter = message_from_string(message.raw_data, policy=policy.default)
                assert isinstance(letter, EmailMessage)
                content = letter.get_body(("plain",))
                assert content is not None
                found.append({"subject": str(letter["Subject"]), "text": content.get_content()})
        return found


def _ses_sent() -> list[Any]:
    """What the SES of the moto server in this process has sent in the region, oldest first
    (moto's internal view, as its documentation shows it)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][AWS_REGION].sent_messages)


def _empty_region() -> None:
    """Forget what an earlier run left in the region: resources, items, messages, mail."""
    from moto.core.models import DEFAULT_ACCOUNT_ID

    for service in _MOTO_SERVICES:
        backends = getattr(import_module(f"moto.{service}.models"), f"{service}_backends")
        backends[DEFAULT_ACCOUNT_ID][AWS_REGION].reset()


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
) -> AsyncIterator[InMemoryPlatform]:
    """Every domain in `domains.names()` behind the gateway, HTTP and WebSocket; the admin
    is bootstrapped from `TCTF_ADMIN_EMAIL` as in production."""
    every_domain = _every_domain(monkeypatch)
    async with Harness(*every_domain, **harness) as h:
        router = gateway_router(h.runtime)
        app = HttpApp(router, websockets=gateway_websockets(h.runtime, router))
        yield InMemoryPlatform(h.runtime, Client(app), h=h)


@asynccontextmanager
async def whole_platform_on_aws(
    monkeypatch: pytest.MonkeyPatch, endpoint_url: str, transport: str
) -> AsyncIterator[AwsPlatform]:
    """The same on AWS APIs of the moto server at `endpoint_url`, in this process, composed
    as `tctf run --aws` composes it (`tctf.aws.aws_platform`) but on a `ManualClock`, in an
    empty region."""
    every_domain = _every_domain(monkeypatch)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)  # the SES mailer's SDK reads it
    _empty_region()
    settings = AwsSettings(endpoint_url=endpoint_url)
    composed = aws_platform(every_domain, settings, transport, seed=7, clock=ManualClock())
    async with composed as platform, platform.running():
        websockets = gateway_websockets(platform.runtime, platform.router)
        yield AwsPlatform(platform.runtime, Client(HttpApp(platform.router, websockets=websockets)))


def _every_domain(monkeypatch: pytest.MonkeyPatch) -> list[Domain]:
    monkeypatch.setenv(ADMIN_EMAIL_VARIABLE, ADMIN_EMAIL)
    monkeypatch.setenv(variable(UNSUBSCRIBE), json.dumps([UNSUBSCRIBE_SECRET]))
    return [domains.load(name) for name in domains.names()]


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
