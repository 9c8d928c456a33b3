"""WebSocket routes: what a domain declares (`Domain.websocket`), the `Connections` port its
handlers post messages through, and the in-process connections `tctf run` and tests serve.

The shape is API Gateway's WebSocket API: a `$connect` authorised by the access token (sent
in the query string, as browsers cannot set headers on a WebSocket), a `$disconnect`, and
messages posted to a connection id from anywhere (`PostToConnection`), a closed connection
answering `ConnectionGone`. The kernel only declares and routes; the edges serve it.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bus.access import SIGNED_IN, Access, Authenticator, Principal, Unauthenticated
from bus.errors import ConnectionGone

if TYPE_CHECKING:
    from bus.context import Context
    from bus.domain import Domain

_log = logging.getLogger("tctf.websockets")

#: The query-string parameter carrying the access token at `$connect`.
TOKEN_PARAMETER = "token"
#: Close codes of a refused or failed connection (RFC 6455's private range, 4000-4999,
#: mirroring the HTTP status a route would answer).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNAVAILABLE = 4503
#: API Gateway closes a WebSocket connection after two hours, whatever its traffic.
MAX_CONNECTION_SECONDS = 2 * 3600


@dataclass(frozen=True, slots=True)
class Connection:
    """A WebSocket connection accepted for a verified caller."""

    connection_id: str
    principal: Principal


ConnectHandler = Callable[[Connection, "Context"], Awaitable[None]]
#: Told the connection id only: API Gateway's `$disconnect` names no caller.
DisconnectHandler = Callable[[str, "Context"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebSocketRoute:
    """A domain's WebSocket API: one per domain, served at `path` by `tctf run` and as its
    own API Gateway WebSocket API on AWS (`$connect`, `$disconnect`)."""

    domain: str
    path: str
    #: Called once the token is verified, before the connection is accepted: it records the
    #: connection (a failure refuses it).
    on_connect: ConnectHandler
    #: Called with the connection id when the client or the server closes the connection.
    on_disconnect: DisconnectHandler
    access: Access = SIGNED_IN


class Connections(Protocol):
    """Where a handler posts to a connection: API Gateway's management API on AWS, the
    sockets this process serves locally."""

    async def post(self, connection_id: str, data: bytes) -> None:
        """Send `data` as one text frame; `ConnectionGone` if the connection is closed."""
        ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection was not accepted: a close code (`CLOSE_*`) and a reason for the
    client, and the HTTP status API Gateway answers the handshake with."""

    code: int
    status: int
    reason: str


ContextFactory = Callable[[str, "str | None"], "Context"]


class WebSocketSessions:
    """The `$connect` / `$disconnect` protocol of every domain's WebSocket route, the same
    for each edge serving it: the token verified as the HTTP gateway verifies it, then the
    domain's handler with a fresh context."""

    def __init__(
        self,
        domains: Iterable[Domain],
        context: ContextFactory,
        authenticator: Authenticator | None,
    ) -> None:
        self.routes = {
            d.websocket_route.path: d.websocket_route for d in domains if d.websocket_route
        }
        self._context = context
        self.authenticator = authenticator

    def route(self, path: str) -> WebSocketRoute | None:
        return self.routes.get(path)

    async def connect(
        self, route: WebSocketRoute, connection_id: str, query: Mapping[str, str]
    ) -> Connection | Refusal:
        """Verify the token in `query` and record the connection with the domain."""
        token = query.get(TOKEN_PARAMETER)
        try:
            if not token:
                raise Unauthenticated(f"no {TOKEN_PARAMETER} query parameter")
            if self.authenticator is None:
                raise Unauthenticated("no authenticator is configured for WebSocket routes")
            principal = await self.authenticator.authenticate(token)
        except Unauthenticated as error:
            _log.info("websocket %s: refused: %s", route.path, error)
            return Refusal(CLOSE_UNAUTHENTICATED, 401, "a valid access token is required")
        if not principal.may(route.access):
            return Refusal(CLOSE_FORBIDDEN, 403, f"this connection needs {route.access.label}")
        connection = Connection(connection_id, principal)
        try:
            await route.on_connect(connection, self._context(route.domain, None))
        except Exception:
            _log.exception("websocket %s: recording %s failed", route.path, connection_id)
            return Refusal(CLOSE_UNAVAILABLE, 503, "the connection could not be recorded; retry")
        return connection

    async def disconnect(self, route: WebSocketRoute, connection_id: str) -> None:
        await route.on_disconnect(connection_id, self._context(route.domain, None))


Sender = Callable[[bytes], Awaitable[None]]


class LocalConnections:
    """The connections this process serves (`tctf run`, tests), by connection id."""

    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def attach(self, connection_id: str, send: Sender) -> None:
        self._senders[connection_id] = send

    def detach(self, connection_id: str) -> None:
        self._senders.pop(connection_id, None)

    def __contains__(self, connection_id: object) -> bool:
        return connection_id in self._senders

    async def post(self, connection_id: str, data: bytes) -> None:
        send = self._senders.get(connection_id)
        if send is None:
            raise ConnectionGone(connection_id)
        await send(data)


#: The connections of the process running the handlers: set by the runtime (in memory) or
#: the Lambda's boot (API Gateway), read by `Context.connections`.
current_connections: contextvars.ContextVar[Connections | None] = contextvars.ContextVar(
    "current_connections", default=None
)
