"""Routes declare who may call them; the router checks the bearer token before the handler."""

from __future__ import annotations

from pydantic import BaseModel

from bus import Context, Domain, Request
from bus.access import INTERNAL, SIGNED_IN, Access, Principal, Unauthenticated
from bus.client import Operation
from bus.http import HttpRequest, HttpResponse, HttpRouter
from bus.testing import Harness
from bus.topology import Topology


class TokensByName:
    """An authenticator over a fixed table of tokens: the port's smallest real implementation."""

    def __init__(self, principals: dict[str, Principal]) -> None:
        self.principals = principals

    async def authenticate(self, token: str) -> Principal:
        try:
            return self.principals[token]
        except KeyError:
            raise Unauthenticated("unknown token") from None


class Who(BaseModel):
    subject: str | None


def vault() -> Domain:
    domain = Domain("vault")

    @domain.get("/open", response=Who)
    async def open_door(request: Request[None], ctx: Context) -> Who:
        return Who(subject=None)

    @domain.get("/mine", response=Who, access=SIGNED_IN)
    async def mine(request: Request[None], ctx: Context) -> Who:
        assert request.principal is not None
        return Who(subject=request.principal.subject)

    @domain.get("/audit", response=Who, access=Access(roles=("admin",), scopes=("audit",)))
    async def audit(request: Request[None], ctx: Context) -> Who:
        return Who(subject=request.principal.subject if request.principal else None)

    @domain.get("/internal/check", response=Who, access=INTERNAL)
    async def check(request: Request[None], ctx: Context) -> Who:
        return Who(subject="service")

    @domain.get("/relay", response=Who)
    async def relay(request: Request[None], ctx: Context) -> Who:
        return await ctx.client("vault").call(
            Operation("vault", "GET", "/internal/check", None, Who)
        )

    return domain


TOKENS = {
    "ada": Principal("u-ada"),
    "root": Principal("u-root", scopes=frozenset({"audit"}), roles=frozenset({"admin"})),
    "half": Principal("u-half", roles=frozenset({"admin"})),
}


async def get(router: HttpRouter, path: str, token: str | None = None) -> HttpResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await router.handle(HttpRequest("GET", path, headers=headers))


async def test_signed_in_route_needs_a_valid_bearer_token_and_sees_its_subject() -> None:
    async with Harness(vault()) as h:
        router = HttpRouter(
            h.runtime.domains,
            h.runtime.publisher,
            h.runtime.context,
            authenticator=TokensByName(TOKENS),
        )
        missing = await get(router, "/mine")
        forged = await get(router, "/mine", "forged")
        ok = await get(router, "/mine", "ada")
        public = await get(router, "/open")
    assert missing.status == forged.status == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["content-type"] == "application/problem+json"
    assert ok.status == 200 and ok.json() == {"subject": "u-ada"}
    assert public.status == 200


async def test_a_route_needing_a_role_and_scope_is_403_without_them() -> None:
    async with Harness(vault()) as h:
        router = HttpRouter(
            h.runtime.domains,
            h.runtime.publisher,
            h.runtime.context,
            authenticator=TokensByName(TOKENS),
        )
        plain = await get(router, "/audit", "ada")
        role_only = await get(router, "/audit", "half")
        both = await get(router, "/audit", "root")
    assert plain.status == role_only.status == 403
    assert both.status == 200 and both.json() == {"subject": "u-root"}


async def test_without_an_authenticator_signed_in_routes_stay_closed() -> None:
    async with Harness(vault()) as h:
        router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
        answer = await get(router, "/mine", "ada")
    assert answer.status == 401


async def test_internal_routes_are_unknown_to_the_gateway_and_reached_by_the_service_client() -> (
    None
):
    async with Harness(vault()) as h:
        router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
        direct = await get(router, "/internal/check", "root")
        relayed = await get(router, "/relay")
    assert direct.status == 404
    assert relayed.status == 200 and relayed.json() == {"subject": "service"}


def test_the_topology_carries_each_routes_access_and_the_token_policy() -> None:
    topology = Topology.from_domains([vault()], app="shop")
    access = {r.path: (r.signed_in, r.scopes, r.roles, r.internal) for r in topology.routes}
    assert access["/open"] == (False, (), (), False)
    assert access["/mine"] == (True, (), (), False)
    assert access["/audit"] == (True, ("audit",), ("admin",), False)
    assert access["/internal/check"] == (False, (), (), True)
    assert topology.token_policy is not None
    assert topology.token_policy.issuer == "urn:shop:auth"
    assert "signed in, role admin, scope audit" in topology.render_table()
