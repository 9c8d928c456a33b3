"""A platform named other than the default: the tokens its auth_core signs pass its own
gateway, whose issuer and audience follow the same name."""

from __future__ import annotations

import re
from typing import Any

import orjson

from bus.clock import ManualClock
from bus.http import HttpRequest, HttpResponse
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tctf.platform import Platform

PASSWORD = "correct horse battery staple"
_TOKEN_IN_LINK = re.compile(r"#token=([A-Za-z0-9_\-.~%]+)")


async def call(
    platform: Platform, method: str, path: str, body: Any = None, token: str | None = None
) -> HttpResponse:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    path, _, query = path.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if part)
    payload = b"" if body is None else orjson.dumps(body)
    answer = await platform.router.handle(HttpRequest(method, path, params, headers, payload))
    await platform.runtime.settle()
    return answer


async def test_a_platform_named_acme_accepts_the_tokens_it_signs() -> None:
    platform = Platform(
        [users, auth_password, auth_core, messaging_consumers],
        app="acme",
        clock=ManualClock(),
        seed=0,
    )
    email = "ada@example.com"
    async with platform.running():
        created = await call(platform, "POST", "/users", {"email": email, "name": "Ada"})
        user_id = created.json()["user_id"]
        letters = (await call(platform, "GET", f"/mail?to={email}")).json()["items"]
        [token] = [m.group(1) for x in letters if (m := _TOKEN_IN_LINK.search(x["text"]))]
        password_set = {"token": token, "password": PASSWORD}
        assert (await call(platform, "POST", "/auth/password/set", password_set)).status == 204
        credentials = {"email": email, "password": PASSWORD}
        session = await call(platform, "POST", "/auth/sessions", credentials)
        profile = await call(
            platform, "GET", f"/users/{user_id}", token=session.json()["access_token"]
        )
    assert platform.runtime.topology.token_policy is not None
    assert platform.runtime.topology.token_policy.issuer == "urn:acme:auth"
    assert profile.status == 200, profile.json()
