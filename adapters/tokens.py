"""The bearer-token check, as API Gateway's JWT authorizer makes it: the token's signature
by a key of the issuer's JWK set (chosen by `kid`), its issuer, audience, expiry and
not-before, on the injected clock. The local gateway checks every signed-in route with it,
and a function checks a WebSocket's `$connect` with it (API Gateway's WebSocket APIs have no
JWT authorizer), so it sits below both edges.

The JWK set is read from the issuer's own route, and read again when a token names a key
it does not hold (a key added by rotation verifies at once) or when the copy is older than
`JWKS_MAX_AGE` (a retired key stops verifying within that time).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bus.access import Principal, TokenPolicy, Unauthenticated
from bus.clock import Clock

#: Signature algorithms accepted: asymmetric only, never `none` or a shared secret.
ALGORITHMS = ("ES256", "RS256", "EdDSA")

#: Seconds a fetched JWK set is trusted before it is read again.
JWKS_MAX_AGE = 300.0

JwksSource = Callable[[], Awaitable[dict[str, Any]]]


def jwks_from_url(url: str, timeout: float = 5.0) -> JwksSource:
    """The issuer's JWK set read over HTTPS (in a worker thread: the standard library's
    client, nothing more on a function's cold start)."""

    def read() -> dict[str, Any]:
        import json
        import urllib.request

        with urllib.request.urlopen(url, timeout=timeout) as answer:
            keys: dict[str, Any] = json.load(answer)
            return keys

    async def fetch() -> dict[str, Any]:
        import asyncio

        try:
            return await asyncio.to_thread(read)
        except (OSError, ValueError) as error:
            raise Unauthenticated(f"the issuer's key set at {url} is unreadable: {error}") from None

    return fetch


class JwtAuthenticator:
    """Verifies bearer tokens against `policy` with the keys `jwks` returns."""

    def __init__(self, policy: TokenPolicy, jwks: JwksSource, clock: Clock) -> None:
        self.policy = policy
        self._jwks = jwks
        self._clock = clock
        self._keys: Any = None
        self._fetched_at = float("-inf")

    async def authenticate(self, token: str) -> Principal:
        from joserfc import jws, jwt
        from joserfc.errors import JoseError

        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError) as error:
            raise Unauthenticated(f"malformed token: {error}") from None
        keys = await self._key_set(str(header.get("kid", "")))
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
            self._registry().validate(decoded.claims)
        except (JoseError, ValueError) as error:
            raise Unauthenticated(f"token refused: {error}") from None
        return Principal.from_claims(decoded.claims)

    async def _key_set(self, kid: str) -> Any:
        from joserfc.jwk import KeySet

        stale = self._clock.now() - self._fetched_at > JWKS_MAX_AGE
        if stale or not any(k.kid == kid for k in self._keys.keys):
            self._keys = KeySet.import_key_set(await self._jwks())  # type: ignore[arg-type]
            self._fetched_at = self._clock.now()
        if not any(k.kid == kid for k in self._keys.keys):
            raise Unauthenticated(f"no key {kid!r} in the issuer's key set")
        return self._keys

    def _registry(self) -> Any:
        from joserfc.jwt import JWTClaimsRegistry

        return JWTClaimsRegistry(
            now=lambda: int(self._clock.now()),
            iss={"essential": True, "value": self.policy.issuer},
            aud={"essential": True, "value": self.policy.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
