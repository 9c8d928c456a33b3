"""The local API gateway: every domain's routes behind the bearer-token check that API
Gateway's JWT authorizer makes on AWS, configured from the topology's token policy."""

from __future__ import annotations

from typing import Any

from adapters.http.authorizer import JwtAuthenticator
from adapters.http.errors import IssuerUnavailable
from adapters.http.websocket import WebSocketEndpoint
from bus.http import HttpRequest, HttpRouter
from bus.runtime import Runtime
from bus.websockets import WebSocketSessions


def gateway_router(runtime: Runtime) -> HttpRouter:
    """The runtime's routes, signed-in ones checked against the issuer's JWK set, which
    the gateway reads from the issuer's route in process as API Gateway reads it by URL."""
    router = HttpRouter(
        runtime.domains,
        runtime.publisher,
        runtime.context,
        ids=runtime.ids,
        tracing=runtime.tracing,
    )
    policy = runtime.topology.token_policy
    if policy is None:
        return router

    async def jwks() -> dict[str, Any]:
        answer = await router.handle(HttpRequest("GET", policy.jwks_path))
        if answer.status != 200:
            raise IssuerUnavailable(
                f"the token issuer's key set at {policy.jwks_path} answered {answer.status}: "
                "run the domain that issues tokens (auth_core) with the others"
            )
        keys: dict[str, Any] = answer.json()
        return keys

    router.authenticator = JwtAuthenticator(policy, jwks, runtime.clock)
    return router


def gateway_websockets(runtime: Runtime, router: HttpRouter) -> WebSocketEndpoint:
    """The runtime's WebSocket routes on its connections, their tokens checked by the same
    authenticator as `router`'s signed-in routes."""
    sessions = WebSocketSessions(runtime.domains, runtime.context, router.authenticator)
    return WebSocketEndpoint(sessions, runtime.connections, runtime.ids)
