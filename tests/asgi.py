"""One HTTP request through an ASGI app, as a server would pass it: the scope, the body in
`http.request` messages, then the answer's start and body messages read back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
) -> HttpResponse:
    """The answer to one request, its body sent in pieces of `chunk` bytes (whole if None)."""
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
    await app(scope, receive, send)
    start, answer = sent
    return HttpResponse(
        start["status"], answer["body"], {k.decode(): v.decode() for k, v in start["headers"]}
    )
