"""The local API gateway: every domain's routes behind the bearer-token check that API
Gateway's JWT authorizer makes on AWS, configured from the topology's token policy."""

from __future__ import annotations

from typing import Any

from adapters.http.authorizer import JwtAuthenticator
from adapters.http.errors import IssuerUnavailable
from bus.http import HttpRequest, HttpRouter
from bus.runtime import Runtime


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
