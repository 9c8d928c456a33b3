"""The identity domains with auth_admin, behind the gateway, and an admin to act with: the
first admin comes from `TCTF_ADMIN_EMAIL`, as in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus.testing import Harness
from domains.auth_admin.app import ADMIN_EMAIL_VARIABLE
from domains.auth_admin.app import domain as auth_admin
from domains.auth_core.app import domain as auth_core
from domains.auth_password.app import domain as auth_password
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tests.domains.identity import Client, Identity

ADMIN_EMAIL = "root@example.com"


@asynccontextmanager
async def admin_identity(
    monkeypatch: pytest.MonkeyPatch, **harness: Any
) -> AsyncIterator[Identity]:
    monkeypatch.setenv(ADMIN_EMAIL_VARIABLE, ADMIN_EMAIL)
    async with Harness(
        users, auth_password, auth_core, messaging_consumers, auth_admin, **harness
    ) as h:
        yield Identity(h, Client(HttpApp(gateway_router(h.runtime))))


async def signed_in_admin(idp: Identity) -> tuple[str, str]:
    """The bootstrapped admin's id and access token."""
    user_id, session = await idp.member(ADMIN_EMAIL, "Root")
    return user_id, str(session["access_token"])
