"""An ASGI application over `bus.http.HttpRouter`, served by uvicorn under `tctf run`.

It only translates: ASGI request in, `HttpRequest` to the router, `HttpResponse` out. Bodies
over API Gateway's 10 MB payload limit are refused with 413, as API Gateway would.
`GET /openapi.json` answers the served domains' OpenAPI document (`bus.openapi`), and
WebSocket connections go to the domains' WebSocket routes (`adapters.http.websocket`).
With a `CorsPolicy` (`tctf run --cors-origin`), preflights and cross-origin answers are
handled as API Gateway handles them for a deployed API (`adapters.http.cors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from bus.http import (
    CORRELATION_HEADER,
    HARDENING_HEADERS,
    HttpRequest,
    HttpResponse,
    HttpRouter,
    ProblemType,
    problem,
)

if TYPE_CHECKING:
    from adapters.http.cors import CorsPolicy
    from adapters.http.websocket import WebSocketEndpoint

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

Lifespan = Callable[[], AbstractAsyncContextManager[Any]]

#: API Gateway's maximum request payload.
MAX_BODY_BYTES = 10 * 1024 * 1024
OPENAPI_PATH = "/openapi.json"


class HttpApp:
    """ASGI entry point for every domain route.

    `lifespan`, when given, is entered at the server's startup and left at its shutdown:
    e.g. a `Runtime.running`, so its consumers share the server's event loop.
    `websockets` serves the domains' WebSocket routes (none without it). `cors` answers
    cross-origin requests from the origins it allows (none without it: no CORS header).
    """

    def __init__(
        self,
        router: HttpRouter,
        max_body: int = MAX_BODY_BYTES,
        *,
        lifespan: Lifespan | None = None,
        websockets: WebSocketEndpoint | None = None,
        cors: CorsPolicy | None = None,
    ) -> None:
        self.router = router
        self.cors = cors
        self.websockets = websockets
        self.max_body = max_body
        self.lifespan = lifespan
        self._openapi: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self.lifespan)
            return
        if scope["type"] == "websocket":
            if self.websockets is not None:
                await self.websockets(scope, receive, send)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.cors is None:
            await _send(send, await self._answer(scope, receive, headers))
            return
        preflight = self.cors.preflight(scope["method"], headers)
        if preflight is None:
            answer = self.cors.answer(headers, await self._answer(scope, receive, headers))
        else:
            await self._read_body(receive)
            answer = preflight
        await _send(send, answer)

    async def _answer(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> HttpResponse:
        body = await self._read_body(receive)
        if body is None:
            return problem(
                413,
                "Content Too Large",
                f"request body is over {self.max_body} bytes",
                kind=ProblemType.BODY_TOO_LARGE,
                correlation_id=self.router.correlation_id(headers),
            )
        if scope["path"] == OPENAPI_PATH:
            return self._openapi_response(scope["method"], headers)
        request = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            headers=headers,
            body=body,
            client=(scope.get("client") or (None,))[0],
        )
        return await self.router.handle(request)

    def _openapi_response(self, method: str, headers: dict[str, str]) -> HttpResponse:
        correlation_id = self.router.correlation_id(headers)
        if method != "GET":
            return problem(
                405,
                "Method Not Allowed",
                f"{method} is not allowed on {OPENAPI_PATH}",
                kind=ProblemType.METHOD_NOT_ALLOWED,
                correlation_id=correlation_id,
                headers={"allow": "GET"},
            )
        if self._openapi is None:  # built on first ask: `tctf run` starts without it
            from bus.openapi import openapi_document

            self._openapi = orjson.dumps(openapi_document(self.router.domains))
        answer_headers = {
            "content-type": "application/json",
            **HARDENING_HEADERS,
            CORRELATION_HEADER: correlation_id,
        }
        return HttpResponse(200, self._openapi, answer_headers)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _send(send: Send, response: HttpResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send, lifespan: Lifespan | None) -> None:
    """Enter `lifespan` at startup and leave it before reporting the shutdown complete."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    if lifespan is None:
        await _until_shutdown(receive, send)
    else:
        async with lifespan():
            await _until_shutdown(receive, send)
    await send({"type": "lifespan.shutdown.complete"})


async def _until_shutdown(receive: Receive, send: Send) -> None:
    await send({"type": "lifespan.startup.complete"})
    while (await receive())["type"] != "lifespan.shutdown":
        pass
