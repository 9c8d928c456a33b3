"""An ASGI application over `bus.http.HttpRouter`, served by uvicorn under `tctf run`.

It only translates: ASGI request in, `HttpRequest` to the router, `HttpResponse` out. Bodies
over API Gateway's 10 MB payload limit are refused with 413, as API Gateway would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from bus.http import HttpRequest, HttpResponse, HttpRouter, problem

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: API Gateway's maximum request payload.
MAX_BODY_BYTES = 10 * 1024 * 1024


class HttpApp:
    """ASGI entry point for every domain route."""

    def __init__(self, router: HttpRouter, max_body: int = MAX_BODY_BYTES) -> None:
        self.router = router
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = await self._read_body(receive)
        if body is None:
            too_large = problem(
                413,
                "Content Too Large",
                f"request body is over {self.max_body} bytes",
                correlation_id=self.router.correlation_id(headers),
            )
            await _send(send, too_large)
            return
        request = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            headers=headers,
            body=body,
        )
        await _send(send, await self.router.handle(request))

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


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
