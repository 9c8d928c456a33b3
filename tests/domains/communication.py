"""communication over HTTP in one test: the identity domains, auth_admin (for an admin's
token) and communication behind the local gateway on the in-memory transport, with a mail
double standing where messaging_consumers will: it takes `SEND_EMAIL` and answers with
`EMAIL_SENT`, or, for a poison address, fails every receive and on the last one publishes
`EMAIL_FAILED` and leaves the task in its DLQ with the reason, as its contract says."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus import Context, Domain, DomainSettings, PermanentError, Storage
from bus.clock import ManualClock
from bus.http import HttpRequest, HttpResponse
from bus.secrets import variable
from bus.storage.memory import InMemoryTable
from bus.testing import Harness
from domains.auth_admin.app import ADMIN_EMAIL_VARIABLE
from domains.auth_admin.app import domain as auth_admin
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.communication.app import domain as communication
from domains.communication.unsubscribe import SECRET as UNSUBSCRIBE
from domains.messaging_consumers.contracts import EmailFailed, EmailSent, SendEmail
from domains.users.app import domain as users
from tests.domains.identity import Client, Identity

ADMIN_EMAIL = "root@example.com"
UNSUBSCRIBE_SECRET = "test-unsubscribe-secret-0123456789abcdef"
MINUTE = 60.0
DAY = 24 * 3600.0
#: The mail double's queue: a poison address fails this many receives, then is parked.
MAIL_SETTINGS = DomainSettings(max_receive_count=3, retry_attempts=1)


def mail_double(*, answering: bool = True) -> Domain:
    """A real domain in messaging_consumers' place, built from its contract only; one not
    `answering` takes the tasks and reports nothing, leaving that to the test."""
    mail = Domain("messaging_consumers", MAIL_SETTINGS, storage=Storage())

    @mail.task(SendEmail)
    async def send_email(task: SendEmail, ctx: Context) -> None:
        assert ctx.envelope is not None
        if not answering:
            return
        if task.to.startswith("poison"):
            attempts = {"PK": f"ATTEMPTS#{ctx.envelope.id}", "SK": "ATTEMPTS"}
            await ctx.table.update(attempts, add={"count": 1})
            counted = await ctx.table.get(attempts, consistent=True)
            assert counted is not None
            if int(counted["count"]) < MAIL_SETTINGS.max_receive_count:
                raise RuntimeError(f"the provider refused {task.to}: mailbox unavailable")
            reason = f"the provider refused {task.to} {counted['count']} times"
            async with ctx.unit_of_work() as uow:
                uow.publish(
                    EmailFailed(
                        to=task.to,
                        template=task.template,
                        reason=reason,
                        user_id=task.user_id,
                        campaign_id=task.campaign_id,
                    )
                )
            raise PermanentError(reason)
        async with ctx.unit_of_work() as uow:
            if task.campaign_id is not None:  # identity's letters pass through here too
                uow.update(
                    {"PK": f"SENT#{task.campaign_id}", "SK": f"USER#{task.user_id}"},
                    add={"count": 1},
                )
            uow.publish(
                EmailSent(
                    to=task.to,
                    template=task.template,
                    message_id=ctx.new_id(),
                    user_id=task.user_id,
                    campaign_id=task.campaign_id,
                )
            )

    return mail


@dataclass
class Campaigns(Identity):
    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.h.clock, ManualClock)
        return self.h.clock

    async def admin(self) -> str:
        """The bootstrapped admin's access token."""
        _, session = await self.member(ADMIN_EMAIL, "Root")
        return str(session["access_token"])

    async def advance(self, seconds: float) -> None:
        """Move the clock, then let every schedule now due fire and its work settle."""
        self.clock.advance(seconds)
        await self.h.settle()

    async def create(self, token: str, **draft: Any) -> Any:
        body = {
            "subject": "Spring news",
            "body": "Hello from the team.",
            "segment": {"kind": "plan", "plan": "free"},
            "send_at": self.at(MINUTE),
            **draft,
        }
        answer = await self.call("POST", "/communication/campaigns", body, token=token)
        await self.h.settle()
        return answer

    def at(self, seconds_from_now: float) -> str:
        from bus.clock import isoformat

        return isoformat(self.clock.now() + seconds_from_now)

    def facts(self, event_type: str) -> list[dict[str, Any]]:
        return [dict(e.data_dict()) for e in self.h.published_of(event_type)]

    def campaign_facts(self, event_type: str) -> list[dict[str, Any]]:
        """The mail double's facts about campaign e-mails (identity's letters go through it
        too)."""
        return [f for f in self.facts(event_type) if f["template"] == "campaign"]

    def emails(self) -> list[dict[str, Any]]:
        """Every distinct SEND_EMAIL communication sent, by task id."""
        unique = {e.id: e for e in self.h.published_of("SEND_EMAIL")}
        return [dict(e.data_dict()) for e in unique.values() if e.source == "communication"]


def sends_per_recipient(h: Harness) -> Counter[str]:
    """How many times the mail double committed a send to each user, over every campaign."""
    table = h.runtime.tables["messaging_consumers"]
    assert isinstance(table, InMemoryTable)
    return Counter(
        {
            str(i["SK"]).removeprefix("USER#"): int(i["count"])
            for i in table.scan()
            if str(i["PK"]).startswith("SENT#")
        }
    )


@asynccontextmanager
async def campaign_platform(
    monkeypatch: pytest.MonkeyPatch, *, answering: bool = True, **harness: Any
) -> AsyncIterator[Campaigns]:
    monkeypatch.setenv(ADMIN_EMAIL_VARIABLE, ADMIN_EMAIL)
    monkeypatch.setenv(variable(UNSUBSCRIBE), json.dumps([UNSUBSCRIBE_SECRET]))
    domains = (users, auth_password, auth_core, auth_admin, communication)
    async with Harness(*domains, mail_double(answering=answering), **harness) as h:
        yield Campaigns(h, Client(HttpApp(gateway_router(h.runtime))))


async def as_admin(h: Harness, method: str, path: str, body: Any = None) -> HttpResponse:
    """A request as communication's function gets it in production: API Gateway's JWT
    authorizer has verified an admin's token and passes its claims."""
    request = HttpRequest(
        method,
        path,
        headers={"content-type": "application/json"},
        body=b"" if body is None else orjson.dumps(body),
        verified_claims={"sub": "admin-1", "roles": ["admin"]},
    )
    return await h.router.handle(request)


@asynccontextmanager
async def communication_alone(
    monkeypatch: pytest.MonkeyPatch, **harness: Any
) -> AsyncIterator[Harness]:
    """communication and the mail double only: the users' facts come from the test."""
    monkeypatch.setenv(variable(UNSUBSCRIBE), json.dumps([UNSUBSCRIBE_SECRET]))
    async with Harness(communication, mail_double(), **harness) as h:
        yield h
