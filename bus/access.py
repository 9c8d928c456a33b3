"""Who may call a route: the access a route declares, the caller's verified principal, and
the gateway's bearer-token check, stated once for `tctf run` and for the JWT authorizer.

A route declares `access=PUBLIC`, `SIGNED_IN`, `Access(scopes=...)`, `Access(roles=...)` or
`INTERNAL` (reachable only through the in-process service client, never the public gateway).
The router asks an `Authenticator` for the principal behind a request's bearer token; the
token's signature, issuer, audience and expiry are the authenticator's to check, as API
Gateway's JWT authorizer checks them before a Lambda sees the request. The token policy of
the app a process runs is what `ctx.token_policy` gives the domain that signs tokens.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bus.errors import BusError

#: Where the gateway finds the token issuer's public keys (a JWK set), as a path of the app.
JWKS_PATH = "/auth/jwks.json"


@dataclass(frozen=True, slots=True)
class Access:
    """What a route needs of its caller; every field's zero value asks nothing."""

    #: A valid bearer token is required.
    signed_in: bool = False
    #: Every one of these must be in the token's `scope` claim (space-separated, OAuth style).
    scopes: tuple[str, ...] = ()
    #: At least one of these must be in the token's `roles` claim.
    roles: tuple[str, ...] = ()
    #: Served only to other domains through the service client: 404 on the public gateway.
    internal: bool = False

    def __post_init__(self) -> None:
        if (self.scopes or self.roles) and not self.signed_in:
            object.__setattr__(self, "signed_in", True)

    @property
    def label(self) -> str:
        if self.internal:
            return "internal"
        if not self.signed_in:
            return "public"
        parts = ["signed in"]
        if self.roles:
            parts.append("role " + "|".join(self.roles))
        if self.scopes:
            parts.append("scope " + " ".join(self.scopes))
        return ", ".join(parts)


PUBLIC = Access()
SIGNED_IN = Access(signed_in=True)
INTERNAL = Access(internal=True)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a verified token names: `subject` is the `user_id`."""

    subject: str
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    #: Every claim of the token, as verified.
    claims: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        scope = claims.get("scope") or ""
        roles = claims.get("roles")
        return cls(
            subject=str(claims["sub"]),
            scopes=frozenset(str(scope).split()),
            roles=frozenset(map(str, roles)) if isinstance(roles, list | tuple) else frozenset(),
            claims=dict(claims),
        )

    def may(self, access: Access) -> bool:
        """Whether this principal holds the scopes and a role the route asks for."""
        if not set(access.scopes) <= self.scopes:
            return False
        return not access.roles or bool(self.roles & set(access.roles))


class Unauthenticated(BusError):
    """The request's bearer token is missing, malformed, badly signed, expired, or issued
    by or for someone else: HTTP 401. The message is for the log, never the caller."""


class Authenticator(Protocol):
    """Finds the principal behind a request's `authorization: Bearer ...` header."""

    async def authenticate(self, token: str) -> Principal: ...


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What a token must say to pass the gateway: the `iss` and `aud` claims, the JWK set's
    path. The same values configure API Gateway's JWT authorizer in `tctf synth`."""

    issuer: str
    audience: str
    jwks_path: str = JWKS_PATH

    @classmethod
    def for_app(cls, app: str) -> TokenPolicy:
        """The policy of `app`: `TCTF_TOKEN_ISSUER` and `TCTF_TOKEN_AUDIENCE` when set."""
        return cls(
            issuer=os.environ.get("TCTF_TOKEN_ISSUER", f"urn:{app}:auth"),
            audience=os.environ.get("TCTF_TOKEN_AUDIENCE", f"urn:{app}:api"),
        )


#: The token policy of the app the running handlers belong to: set by the runtime (from its
#: topology, `Platform(app=...)`) or the Lambda's boot (from `TCTF_APP`), read by
#: `Context.token_policy`.
current_token_policy: contextvars.ContextVar[TokenPolicy | None] = contextvars.ContextVar(
    "current_token_policy", default=None
)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `authorization: Bearer <token>` header (names lower-cased)."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
