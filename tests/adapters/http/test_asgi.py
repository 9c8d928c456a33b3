"""The in-process ASGI app: every malformed request is a 4xx problem+json with a stable
`type`, `GET /openapi.json` describes the served routes, and the lifespan runs the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from adapters.http.asgi import HttpApp
from bus.http import PROBLEM_JSON, ProblemType
from tctf.config import load_domains
from tctf.platform import Platform
from tests.asgi import asgi_request


async def asgi_call(
    app: HttpApp, method: str, path: str, body: bytes = b"", chunk: int | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI interface, its body sent in chunks of `chunk` bytes."""
    answer = await asgi_request(app, method, path, body, chunk=chunk)
    return answer.status, dict(answer.headers), answer.body


@pytest.fixture
def app() -> HttpApp:
    platform = Platform(load_domains(["users", "messaging_consumers"]), seed=1)
    return HttpApp(platform.router, max_body=1024)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", "/users", b"{not json", 400, ProblemType.MALFORMED_BODY),
        ("POST", "/users", b"", 422, ProblemType.INVALID_BODY),
        ("POST", "/users", b'{"email": "ada@example.com"}', 422, ProblemType.INVALID_BODY),
        ("POST", "/users", b'{"email": 7, "name": "Ada"}', 422, ProblemType.INVALID_BODY),
        ("POST", "/users", b"[1, 2]", 422, ProblemType.INVALID_BODY),
        ("POST", "/users", b'{"name": "' + b"x" * 2000 + b'"}', 413, ProblemType.BODY_TOO_LARGE),
        ("GET", "/nowhere", b"", 404, ProblemType.NO_ROUTE),
        ("DELETE", "/users", b"", 405, ProblemType.METHOD_NOT_ALLOWED),
        ("POST", "/openapi.json", b"{}", 405, ProblemType.METHOD_NOT_ALLOWED),
        ("GET", "/users/nobody", b"", 401, ProblemType.UNAUTHORIZED),
        ("GET", "/users/" + "u" * 300, b"", 404, ProblemType.NOT_FOUND),
    ],
)
async def test_bad_requests_are_problems_with_a_stable_type(
    app: HttpApp, method: str, path: str, body: bytes, status: int, kind: ProblemType
) -> None:
    answer_status, headers, answer = await asgi_call(app, method, path, body, chunk=100)
    problem = orjson.loads(answer)
    assert (answer_status, headers["content-type"]) == (status, PROBLEM_JSON)
    assert problem["type"] == kind.value and problem["status"] == status
    assert problem["correlation_id"] == headers["x-correlation-id"]


async def test_openapi_json_describes_the_served_routes(app: HttpApp) -> None:
    status, headers, body = await asgi_call(app, "GET", "/openapi.json")
    document = orjson.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/users", "/users/{user_id}", "/mail", "/mail/notifications"}
    assert document["paths"]["/users"]["post"]["operationId"] == "users.sign_up"


async def test_the_lifespan_holds_its_context_from_startup_to_shutdown() -> None:
    platform = Platform(load_domains(["users"]))
    events: list[str] = []

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        events.append("entered")
        yield
        events.append("left")

    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    replies: list[str] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        replies.append(f"{message['type']} after {events}")

    await HttpApp(platform.router, lifespan=lifespan)({"type": "lifespan"}, receive, send)
    assert replies == [
        "lifespan.startup.complete after ['entered']",
        "lifespan.shutdown.complete after ['entered', 'left']",
    ]
