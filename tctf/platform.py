"""Composition: domains + transport + store + observability, served as one process.

`Platform` is what `tctf run` starts: the bus runtime with delivery logging and, when given a
writer, EMF metrics, and the domains' HTTP routes on localhost.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from bus.client import current_clients
from bus.clock import Clock
from bus.domain import Domain
from bus.http import HttpRouter
from bus.ids import IdGenerator
from bus.memory import in_memory
from bus.middleware import Middleware
from bus.runtime import OutboxParking, Runtime, TableFactory, TransportFactory, memory_tables

if TYPE_CHECKING:
    from adapters.http.cors import CorsPolicy
    from bus.emf import EmfWriter
    from bus.mail import MailProvider


class Platform:
    """Every given domain in one process, on the in-memory transport unless told otherwise."""

    def __init__(
        self,
        domains: Iterable[Domain],
        *,
        transport: TransportFactory | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        app: str = "tctf",
        tables: TableFactory = memory_tables,
        middleware: Sequence[Middleware] = (),
        tracer_provider: Any | None = None,
        outbox_parking: OutboxParking | None = None,
        metrics: EmfWriter | None = None,
        metrics_interval: float = 10.0,
        mail_provider: MailProvider | None = None,
    ) -> None:
        self.runtime = Runtime(
            domains,
            transport or in_memory(seed=seed),
            app=app,
            clock=clock,
            ids=None if seed is None else IdGenerator(seed),
            tables=tables,
            middleware=middleware,
            tracer_provider=tracer_provider,
            outbox_parking=outbox_parking,
            metrics=metrics,
            metrics_interval=metrics_interval,
            mail_provider=mail_provider,
        )
        from adapters.http.gateway import gateway_router

        self.router: HttpRouter = gateway_router(self.runtime)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Platform]:
        """Run the runtime's consumers until the block exits; handlers in it reach other
        domains through the router in process (`ctx.client`)."""
        token = current_clients.set(self.router.clients)
        try:
            async with self.runtime.running():
                yield self
        finally:
            current_clients.reset(token)

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int | None = 8000,
        ready: Callable[[], None] | None = None,
        *,
        cors_origins: Sequence[str] = (),
    ) -> None:
        """Deliver events, and serve HTTP routes when `port` is given, until interrupted.

        `ready` is called once consumers run and the HTTP socket is listening. Browser apps
        of `cors_origins` may call the routes, as the stage's API Gateway lets them
        (`adapters.http.cors`); without, no answer carries a CORS header.
        """
        async with self.running():
            if port is None:
                if ready:
                    ready()
                await anyio.sleep_forever()
            import uvicorn

            from adapters.http.asgi import HttpApp
            from adapters.http.gateway import gateway_websockets

            assert port is not None  # sleep_forever never returns
            listener = listening_socket(host, port)
            app = HttpApp(
                self.router,
                websockets=gateway_websockets(self.runtime, self.router),
                cors=self.cors_policy(cors_origins),
            )
            config = uvicorn.Config(app, log_level="warning", lifespan="off")
            if ready:
                ready()
            with listener:
                await uvicorn.Server(config).serve(sockets=[listener])

    def cors_policy(self, origins: Sequence[str]) -> CorsPolicy | None:
        """What `origins` may call: every public or signed-in route's method, as synth
        offers them; None without origins."""
        if not origins:
            return None
        from adapters.http.cors import CorsPolicy

        methods = (route.method for route in self.router.routes if not route.access.internal)
        return CorsPolicy.of(origins, methods)


def listening_socket(host: str, port: int) -> socket.socket:
    """The HTTP listener of `tctf run`, whose accepted connections send without delay.

    asyncio turns Nagle's algorithm off only on sockets made with proto IPPROTO_TCP, and
    `create_server` makes them with 0: each keep-alive answer's second write would wait for
    the client's delayed ACK (about 40 ms). Accepted connections inherit the listener's
    TCP_NODELAY."""
    listener = socket.create_server((host, port))
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener
