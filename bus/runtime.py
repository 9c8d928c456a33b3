"""Domains wired to one transport: a dispatcher per domain and consumers in one task group.

`Runtime` is what both the test harness and the platform run; it knows nothing of which
transport it drives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import anyio

from bus.clock import Clock, SystemClock
from bus.context import Context, Metrics
from bus.dispatch import Dispatcher, Observer, Publisher, flush
from bus.domain import Domain
from bus.envelope import Envelope
from bus.ids import IdGenerator
from bus.messages import Event, Task
from bus.middleware import IdempotencyStore, Middleware
from bus.topology import Topology
from bus.transport import Transport

TransportFactory = Callable[[Topology, Clock], Transport]
IdempotencyFactory = Callable[[Domain], IdempotencyStore]


class Runtime:
    """Builds the topology and dispatchers for a set of domains and serves them."""

    def __init__(
        self,
        domains: Iterable[Domain],
        transport: TransportFactory,
        *,
        app: str = "tctf",
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        observer: Observer | None = None,
        middleware: Sequence[Middleware] = (),
        idempotency: IdempotencyFactory | None = None,
        publisher: Callable[[Publisher], Publisher] | None = None,
    ) -> None:
        self.domains = list(domains)
        self.clock = clock or SystemClock()
        self.ids = ids or IdGenerator()
        self.topology = Topology.from_domains(self.domains, app=app)
        self.transport = transport(self.topology, self.clock)
        #: What handlers publish into: the transport, possibly wrapped (e.g. for recording).
        self.publisher: Publisher = publisher(self.transport) if publisher else self.transport
        self.metrics = Metrics()
        self.dispatchers = {
            domain.name: Dispatcher(
                domain,
                self.publisher,
                clock=self.clock,
                ids=self.ids,
                idempotency_store=idempotency(domain) if idempotency else None,
                middleware=middleware,
                observer=observer,
            )
            for domain in self.domains
        }

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Serve every domain's queues until the block exits, then stop the consumers."""
        async with anyio.create_task_group() as group:
            await group.start(self.transport.serve, self.dispatchers)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()

    def context(self, source: str, correlation_id: str | None = None) -> Context:
        """A context for publishing from outside a handler (an API route, a script)."""
        return Context(
            source,
            clock=self.clock,
            ids=self.ids,
            metrics=self.metrics,
            correlation_id=correlation_id,
        )

    async def publish(
        self,
        event: Event,
        *,
        source: str,
        correlation_id: str | None = None,
        subject: str | None = None,
    ) -> Envelope:
        """Publish one event as domain `source` would, starting a new correlation."""
        context = self.context(source, correlation_id)
        envelope = context.publish(event, subject=subject)
        await flush(self.publisher, context.outbox)
        return envelope

    async def send(self, task: Task, *, source: str, correlation_id: str | None = None) -> Envelope:
        """Send one task to the domain that consumes it."""
        context = self.context(source, correlation_id)
        envelope = context.send(task)
        await flush(self.publisher, context.outbox)
        return envelope
