"""One HTTP request through an ASGI app, as a server would pass it: the scope, the body in
`http.request` messages, then the answer's start and body messages read back; and one
WebSocket connection, its messages exchanged the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson

from adapters.http.asgi import HttpApp
from bus.http import HttpResponse


async def asgi_request(
    app: HttpApp,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    query: bytes = b"",
    chunk: int | None = None,
    client: tuple[str, int] | None = None,
) -> HttpResponse:
    """The answer to one request, its body sent in pieces of `chunk` bytes (whole if None),
    from the peer `client` (none named if None, as a server over a UNIX socket names none)."""
    size = chunk or max(len(body), 1)
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers),
    }
    if client is not None:
        scope["client"] = list(client)
    await app(scope, receive, send)
    start, answer = sent
    return HttpResponse(
        start["status"], answer["body"], {k.decode(): v.decode() for k, v in start["headers"]}
    )


class WebSocketSession:
    """One WebSocket connection to an ASGI app, driven as a server would drive it: the
    `websocket.connect` message first, the app's messages read back in order."""

    def __init__(self, to_app: Any, from_app: Any) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self.closed: dict[str, Any] | None = None

    async def receive(self) -> dict[str, Any]:
        """The next message the app sent (`websocket.accept`, `.send` or `.close`)."""
        with anyio.fail_after(5):
            message: dict[str, Any] = dict(await self._from_app.receive())
        if message["type"] == "websocket.close":
            self.closed = message
        return message

    async def receive_json(self) -> Any:
        message = await self.receive()
        assert message["type"] == "websocket.send", message
        return orjson.loads(message["text"])

    def pending(self) -> list[dict[str, Any]]:
        """What the app sent and the test has not read yet, without waiting."""
        found = []
        while True:
            try:
                found.append(dict(self._from_app.receive_nowait()))
            except anyio.WouldBlock:
                return found

    async def disconnect(self) -> None:
        """The client goes away, as a closed socket tells the app."""
        await self._to_app.send({"type": "websocket.disconnect", "code": 1000})


@asynccontextmanager
async def asgi_websocket(
    app: HttpApp, path: str, query: bytes = b""
) -> AsyncIterator[WebSocketSession]:
    """A connection to `path` open for the block; the client disconnects at its end (if
    the app has not closed it) and the app's handling of it has finished on exit."""
    to_app_send, to_app_receive = anyio.create_memory_object_stream[dict[str, Any]](16)
    from_app_send, from_app_receive = anyio.create_memory_object_stream[dict[str, Any]](256)
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": path,
        "query_string": query,
        "headers": [],
    }
    session = WebSocketSession(to_app_send, from_app_receive)
    await to_app_send.send({"type": "websocket.connect"})

    async def send(message: MutableMapping[str, Any]) -> None:
        await from_app_send.send(dict(message))

    async def serve() -> None:
        await app(scope, to_app_receive.receive, send)

    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        try:
            yield session
        finally:
            if session.closed is None:
                await session.disconnect()
