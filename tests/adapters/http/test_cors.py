"""`tctf run --cors-origin`: the ASGI app answers a browser app's preflights and cross-origin
requests as API Gateway answers them for a stage's `cors_origins`, and without origins
answers no CORS header at all."""

from __future__ import annotations

import orjson
import pytest

from adapters.http.asgi import HttpApp
from adapters.http.cors import ALLOW_HEADERS, MAX_AGE_S, CorsPolicy
from bus.http import HttpResponse
from tctf.config import load_domains
from tctf.platform import Platform
from tests.asgi import asgi_request

APP = "https://app.example.org"
ELSEWHERE = "https://evil.example.net"
SIGN_UP = orjson.dumps({"email": "ada@example.org", "name": "Ada"})


def platform() -> Platform:
    return Platform(load_domains(["users"]), seed=1)


@pytest.fixture
def app() -> HttpApp:
    served = platform()
    return HttpApp(served.router, cors=served.cors_policy([APP, "http://localhost:5173"]))


def preflight(origin: str, method: str = "POST") -> list[tuple[bytes, bytes]]:
    return [
        (b"origin", origin.encode()),
        (b"access-control-request-method", method.encode()),
        (b"access-control-request-headers", b"authorization,content-type"),
    ]


def cors_headers(answer: HttpResponse) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.startswith("access-control-")}


async def test_a_preflight_from_an_allowed_origin_is_answered_before_any_route(
    app: HttpApp,
) -> None:
    answer = await asgi_request(app, "OPTIONS", "/users/u-1", headers=preflight(APP, "PATCH"))
    assert (answer.status, answer.body) == (204, b"")
    assert cors_headers(answer) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "DELETE,GET,PATCH,POST",
        "access-control-allow-headers": ",".join(ALLOW_HEADERS),
        "access-control-max-age": str(MAX_AGE_S),
    }
    assert answer.headers["vary"] == "Origin"


async def test_a_preflight_from_another_origin_is_204_without_leave(app: HttpApp) -> None:
    """As API Gateway: the preflight is answered, but allows nothing; the browser then
    refuses to send the request."""
    answer = await asgi_request(app, "OPTIONS", "/users", headers=preflight(ELSEWHERE))
    assert answer.status == 204
    assert cors_headers(answer) == {}
    assert answer.headers["vary"] == "Origin"


async def test_an_options_request_that_is_no_preflight_reaches_the_router(app: HttpApp) -> None:
    answer = await asgi_request(app, "OPTIONS", "/users", headers=[(b"origin", APP.encode())])
    assert answer.status == 405
    assert answer.headers["access-control-allow-origin"] == APP


async def test_an_allowed_origin_may_read_the_answer_and_its_correlation_id(
    app: HttpApp,
) -> None:
    answer = await asgi_request(
        app,
        "POST",
        "/users",
        SIGN_UP,
        headers=[(b"origin", APP.encode()), (b"content-type", b"application/json")],
    )
    assert answer.status == 201
    assert cors_headers(answer) == {
        "access-control-allow-origin": APP,
        "access-control-expose-headers": "x-correlation-id",
    }
    assert answer.headers["vary"] == "Origin"
    assert answer.headers["x-correlation-id"]


@pytest.mark.parametrize("origin", [ELSEWHERE, APP + ":8443", "http://app.example.org", "null"])
async def test_another_origin_is_answered_without_leave_to_read_it(
    app: HttpApp, origin: str
) -> None:
    """API Gateway passes the request on and leaves the CORS headers out: the browser keeps
    the answer from the page. `Vary: Origin` keeps a shared cache from mixing the two."""
    answer = await asgi_request(app, "GET", "/nowhere", headers=[(b"origin", origin.encode())])
    assert answer.status == 404
    assert cors_headers(answer) == {}
    assert answer.headers["vary"] == "Origin"


async def test_problems_and_the_openapi_document_carry_the_headers_too(app: HttpApp) -> None:
    origin = [(b"origin", APP.encode())]
    too_large = await asgi_request(app, "POST", "/users", b"x" * (11 * 1024 * 1024), origin)
    document = await asgi_request(app, "GET", "/openapi.json", headers=origin)
    assert (too_large.status, document.status) == (413, 200)
    assert too_large.headers["access-control-allow-origin"] == APP
    assert document.headers["access-control-allow-origin"] == APP


async def test_without_origins_no_answer_carries_a_cors_header() -> None:
    served = platform()
    assert served.cors_policy([]) is None
    app = HttpApp(served.router)
    answer = await asgi_request(app, "OPTIONS", "/users", headers=preflight(APP))
    sign_up = await asgi_request(app, "POST", "/users", SIGN_UP, [(b"origin", APP.encode())])
    assert answer.status == 405  # no route answers OPTIONS: nothing handles a preflight
    assert sign_up.status == 201
    for headers in (answer.headers, sign_up.headers):
        assert not any(k.startswith("access-control-") or k == "vary" for k in headers)


def test_the_policy_offers_only_the_methods_a_browser_may_call() -> None:
    served = Platform(load_domains(["auth_password"]), seed=1)
    policy = served.cors_policy([APP])
    assert isinstance(policy, CorsPolicy)
    internal = {r.method for r in served.router.routes if r.access.internal}
    public = {r.method for r in served.router.routes if not r.access.internal}
    assert set(policy.methods) == public and internal
