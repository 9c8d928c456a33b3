"""API Gateway WebSocket API events (`$connect`, `$disconnect`) to the domain's WebSocket
route, through the same `bus.websockets.WebSocketSessions` protocol `tctf run` serves.

A `$connect` is answered 200 to accept it, or the refusal's status (401 without a valid
token in the `token` query parameter): API Gateway then refuses the handshake with it. A
`$disconnect` is answered 200 whatever happens: API Gateway ignores its answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bus.websockets import Refusal, WebSocketSessions


async def handle_websocket_event(
    sessions: WebSocketSessions, event: Mapping[str, Any]
) -> dict[str, Any]:
    context = event.get("requestContext") or {}
    connection_id = str(context.get("connectionId", ""))
    route = next(iter(sessions.routes.values()), None)
    kind = context.get("eventType")
    if route is None or not connection_id:
        return {"statusCode": 404}
    if kind == "CONNECT":
        query = {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
        accepted = await sessions.connect(route, connection_id, query)
        if isinstance(accepted, Refusal):
            return {"statusCode": accepted.status, "body": accepted.reason}
        return {"statusCode": 200}
    if kind == "DISCONNECT":
        await sessions.disconnect(route, connection_id)
        return {"statusCode": 200}
    # No route but $connect and $disconnect is declared: a client message has nowhere to go.
    return {"statusCode": 400, "body": "this WebSocket takes no messages"}
