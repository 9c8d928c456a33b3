"""What the platform logs of a request, end to end in memory: every line JSON, carrying the
request's correlation id through each event and task it causes, and none of the secrets or
personal data the request carried — whatever route carries them, since the filter is generic.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from bus import Context, Domain, Rejected, Request
from bus.emf import EmfWriter
from bus.http import HttpRequest
from bus.observability import JsonFormatter
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users
from tctf.platform import Platform
from tests.delivery_log import listening
from tests.emf import emf_lines

EMAIL = "Ada.Lovelace@example.com"
PASSWORD = "correct horse battery staple"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
SECRETS = (EMAIL, EMAIL.lower(), PASSWORD, TOKEN)


class Credentials(BaseModel):
    email: str
    password: str


#: A route shaped like the login a later issue adds: it handles a password and issues a token.
sessions = Domain("sessions")


@sessions.post("/sessions", status=201)
async def log_in(request: Request[Credentials], ctx: Context) -> dict[str, str]:
    body = request.body
    ctx.log.info("login attempt", extra={"email": body.email, "password": body.password})
    if body.password != PASSWORD:
        raise Rejected(f"wrong password for {body.email}")
    ctx.log.info("session opened", extra={"user": body.email, "access_token": TOKEN})
    return {"token": TOKEN}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every `tctf.*` line, DEBUG and up, formatted as `tctf run` and Lambda write it."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    with listening(handler, "tctf", logging.DEBUG):
        yield written


def _post(path: str, body: dict[str, Any], correlation_id: str) -> HttpRequest:
    return HttpRequest(
        "POST",
        path,
        headers={
            "X-Correlation-Id": correlation_id,
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": f"session={TOKEN}",
        },
        body=orjson.dumps(body),
    )


async def test_a_sign_up_and_a_login_log_no_secret_and_one_correlation_id(
    log_lines: io.StringIO,
) -> None:
    metrics = io.BytesIO()
    platform = Platform([users, messaging, sessions], metrics=EmfWriter("tctf", metrics.write))
    runtime = platform.runtime
    async with runtime.running():
        signed_up = await platform.router.handle(
            _post("/users", {"email": EMAIL, "name": "Ada"}, "signup-1")
        )
        again = await platform.router.handle(
            _post("/users", {"email": EMAIL, "name": "Ada"}, "signup-2")
        )
        refused = await platform.router.handle(
            _post("/sessions", {"email": EMAIL, "password": "guess"}, "login-1")
        )
        logged_in = await platform.router.handle(
            _post("/sessions", {"email": EMAIL, "password": PASSWORD}, "login-2")
        )
        while await runtime.relay():  # each outbox's events cause the next
            await runtime.transport.settle()

    assert [signed_up.status, again.status, refused.status, logged_in.status] == [
        201,
        409,
        422,
        201,
    ]
    assert signed_up.headers["x-correlation-id"] == "signup-1"
    text = log_lines.getvalue()
    for secret in SECRETS:
        assert secret not in text
    lines = [orjson.loads(line) for line in text.splitlines()]
    by_correlation: dict[str, list[str]] = {}
    for line in lines:
        by_correlation.setdefault(line["correlation_id"], []).append(line["message"])
    assert by_correlation["signup-1"] == [
        "POST /users 201",
        "handled USER_CREATED",
        "email sent",
        "handled SEND_EMAIL",
    ], "the sign-up's id follows its event and the task that event caused"
    # a 409 logs nothing but its access line
    assert by_correlation["signup-2"] == ["POST /users 409"]
    assert by_correlation["login-1"][-1] == "POST /sessions 422"
    assert set(by_correlation) == {"signup-1", "signup-2", "login-1", "login-2"}
    sent = next(line for line in lines if line["message"] == "email sent")
    assert sent["to"] == "[EMAIL]" and sent["template"] == "welcome"
    opened = next(line for line in lines if line["message"] == "session opened")
    assert opened["access_token"] == "[REDACTED]" and opened["user"] == "[EMAIL]"

    documents = emf_lines(metrics.getvalue().decode())
    signed = [d for d in documents if d.get("UsersSignedUp") is not None]
    assert [(d["service"], d["UsersSignedUp"]) for d in signed] == [("users", 1)]
    assert not any(secret in metrics.getvalue().decode() for secret in SECRETS)
