"""The OAuth provider over HTTP: the identity domains and auth_oauth behind the gateway, and
the steps its flows repeat (an admin, a registered client, a PKCE pair, an authorization)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from adapters.http.asgi import HttpApp
from adapters.http.gateway import gateway_router
from bus.http import HttpResponse
from bus.testing import Harness
from domains.auth_core.app import ACCESS_TOKEN_LIFETIME, signing_keys
from domains.auth_core.app import domain as auth_core
from domains.auth_oauth.app import domain as auth_oauth
from domains.auth_password.app import domain as auth_password
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.users.app import domain as users
from tests.domains.identity import Client, Identity

REDIRECT_URI = "https://app.example.com/callback"


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Provider(Identity):
    """Identity plus auth_oauth: an admin's token, and a user signed in to authorize."""

    def admin_token(self) -> str:
        """An access token with the admin role, as auth_core signs one once auth_admin has
        granted the role (the roles projection is auth_admin's to feed)."""
        now = int(self.h.clock.now())
        policy = self.h.topology.token_policy
        assert policy is not None
        return signing_keys().sign(
            {
                "iss": policy.issuer,
                "aud": policy.audience,
                "sub": "admin-1",
                "iat": now,
                "exp": now + ACCESS_TOKEN_LIFETIME,
                "scope": "profile",
                "roles": ["admin"],
            }
        )

    async def register(self, **registration: Any) -> dict[str, Any]:
        body = {"name": "Notes app", "redirect_uris": [REDIRECT_URI], **registration}
        answer = await self.call("POST", "/oauth/clients", body, token=self.admin_token())
        assert answer.status == 201, answer.json()
        await self.h.settle()
        return dict(answer.json())

    async def authorize(
        self, user_token: str, client_id: str, challenge: str, **extra: Any
    ) -> HttpResponse:
        body = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile",
            "state": "st-1",
            "nonce": "n-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        sent = {k: v for k, v in body.items() if v is not None}
        return await self.call("POST", "/oauth/authorize", sent, token=user_token)

    async def token(self, body: dict[str, Any], *, auth: str | None = None) -> HttpResponse:
        answer = await self.client.request("POST", "/oauth/token", body, authorization=auth)
        await self.h.settle()
        return answer

    async def exchange(
        self, client: dict[str, Any], code: str, verifier: str | None, **extra: Any
    ) -> HttpResponse:
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            **extra,
        }
        return await self.token({k: v for k, v in body.items() if v is not None})

    async def granted(self, email: str = "ada@example.com") -> tuple[str, dict[str, Any], Any]:
        """A user who authorized a confidential client, and the client's tokens."""
        user_id, session = await self.member(email)
        client = await self.register()
        verifier, challenge = pkce_pair()
        code = await self.authorize(session["access_token"], client["client_id"], challenge)
        tokens = await self.exchange(client, code.json()["code"], verifier)
        assert tokens.status == 200, tokens.json()
        return user_id, client, tokens.json()


@asynccontextmanager
async def provider(**harness: Any) -> AsyncIterator[Provider]:
    async with Harness(
        users, auth_password, auth_core, messaging_consumers, auth_oauth, **harness
    ) as h:
        yield Provider(h, Client(HttpApp(gateway_router(h.runtime))))
