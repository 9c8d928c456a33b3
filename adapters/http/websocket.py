"""A domain's WebSocket route served over ASGI under `tctf run`, as API Gateway serves it on
AWS: the `token` query parameter verified at connect, frames posted to the connection by
id (`bus.websockets.LocalConnections`), and `$disconnect` when either side closes.

A refused connection is accepted and closed at once with a close code a client can read
(4401 without a valid token, 4403 without the access the route asks, 4503 when it could not
be recorded), where API Gateway answers the handshake with the matching HTTP status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from bus.websockets import LocalConnections, Refusal, WebSocketSessions

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Close code of a path that has no WebSocket route (RFC 6455: policy violation).
CLOSE_NO_ROUTE = 1008


class WebSocketEndpoint:
    """Every domain's WebSocket route, by path, on this process's connections."""

    def __init__(
        self,
        sessions: WebSocketSessions,
        connections: LocalConnections,
        new_id: Callable[[], str],
    ) -> None:
        self.sessions = sessions
        self.connections = connections
        self._new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        route = self.sessions.route(scope["path"])
        if route is None:
            await send({"type": "websocket.close", "code": CLOSE_NO_ROUTE})
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        connection_id = self._new_id()

        async def post(data: bytes) -> None:
            await send({"type": "websocket.send", "text": data.decode()})

        # Attached before the domain records it, so nothing posted from then on is lost.
        self.connections.attach(connection_id, post)
        try:
            accepted = await self.sessions.connect(route, connection_id, query)
            if isinstance(accepted, Refusal):
                await _refuse(send, accepted)
                return
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass  # the protocol is server to client: what a client sends is ignored
            await self.sessions.disconnect(route, connection_id)
        finally:
            self.connections.detach(connection_id)


async def _refuse(send: Send, refusal: Refusal) -> None:
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": refusal.code, "reason": refusal.reason})
