"""Domains wired to one transport: a dispatcher per domain and consumers in one task group.

`Runtime` is what both the test harness and the platform run; it knows nothing of which
transport it drives.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from bus.access import current_token_policy
from bus.assembly import Services, assemble
from bus.clock import Clock, SystemClock
from bus.context import Context
from bus.dispatch import Observer, Publisher, flush
from bus.domain import Domain
from bus.envelope import Envelope
from bus.errors import OutboxNotDrained
from bus.ids import IdGenerator
from bus.mail import MailProvider, current_mail_provider
from bus.messages import Event, Task
from bus.metrics import Metrics
from bus.middleware import Middleware
from bus.schedules import Scheduler
from bus.storage.memory import InMemoryTable
from bus.storage.outbox import OutboxRelay, Park, outbox_sender
from bus.storage.spec import TableSpec
from bus.storage.table import Table
from bus.topology import Topology
from bus.tracing import RelayPublisher, Tracing
from bus.transport import DeadLetter, Transport
from bus.websockets import LocalConnections, current_connections

if TYPE_CHECKING:
    from bus.emf import EmfWriter

_log = logging.getLogger("tctf.outbox")
TransportFactory = Callable[[Topology, Clock], Transport]
TableFactory = Callable[[TableSpec, Clock], Table]
#: Where a domain's relay parks an outbox item it can never publish: (domain) -> `Park`.
OutboxParking = Callable[[str], Park]


def memory_tables(spec: TableSpec, clock: Clock) -> Table:
    """The default table factory: an `InMemoryTable` whose TTLs follow the runtime's clock."""
    return InMemoryTable(spec, now=clock.now)


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
        observers: Sequence[Observer] = (),
        middleware: Sequence[Middleware] = (),
        tracer_provider: Any | None = None,
        publisher: Callable[[Publisher], Publisher] | None = None,
        tables: TableFactory = memory_tables,
        relay_interval: float | None = 1.0,
        outbox_parking: OutboxParking | None = None,
        metrics: EmfWriter | None = None,
        metrics_interval: float = 10.0,
        schedule_interval: float | None = 1.0,
        mail_provider: MailProvider | None = None,
    ) -> None:
        """`relay_interval`: the relay loop passes over the outboxes that a commit wakes it
        for, and, when one still holds events, passes again after this many seconds; None
        runs no relay loop (the test harness relays itself when it settles).
        `schedule_interval`: seconds between looks at the domains' schedules; None runs no
        schedule loop (the test harness fires what is due when it settles).
        `outbox_parking`: where each domain's relay parks an outbox item it can never
        publish (an outbox DLQ); by default `outbox_dead_letters`, in this process.
        `metrics`: where the domains' metrics, the platform's per handler included, are
        written as EMF every `metrics_interval` seconds while serving and when it stops
        (None: handlers' own metrics are counted and not written).
        `mail_provider`: where domains declaring `Mail` send e-mail (`ctx.mail_provider`);
        None: nowhere, each such domain keeps its letters itself."""
        self.domains = list(domains)
        self._domains_by_name = {domain.name: domain for domain in self.domains}
        self.clock = clock or SystemClock()
        self.ids = ids or IdGenerator()
        self.topology = Topology.from_domains(self.domains, app=app)
        self.transport = transport(self.topology, self.clock)
        #: What handlers publish into: the transport, possibly wrapped (e.g. for recording).
        self.publisher: Publisher = publisher(self.transport) if publisher else self.transport
        #: What is recorded outside any domain (a script publishing as no domain).
        self.metrics = Metrics(app)
        #: Each stateful domain's own table.
        self.tables = {
            name: tables(spec, self.clock) for name, spec in self.topology.tables.items()
        }
        #: Outbox items a relay could never publish, by domain, when no `outbox_parking`.
        self.outbox_dead_letters: dict[str, list[DeadLetter]] = {}
        parking = outbox_parking or self._park_in_memory
        #: Outbox relays, one per table: what units of work commit, they publish.
        #: Spans of HTTP requests, handler calls and relays (None: nothing traced).
        self.tracing = None if tracer_provider is None else Tracing(tracer_provider)
        self.relays = {
            name: OutboxRelay(
                table,
                publish_items=outbox_sender(self._relay_publisher(name)),
                park=parking(name),
            )
            for name, table in self.tables.items()
        }
        self._relay_interval = relay_interval
        #: Events the relays have published, by every pass (`settle()` compares).
        self._relayed = 0
        #: The domains whose outbox may hold events: every one at first (a run before may
        #: have left some), then those whose units of work committed events since a pass
        #: last found their outbox empty. Passes read only these tables.
        self._unrelayed = set(self.relays)
        #: Commits with events per domain, so a pass finding an outbox empty knows whether
        #: another commit came meanwhile.
        self._commits = dict.fromkeys(self.relays, 0)
        #: Fires the domains' schedules on this runtime's clock.
        self.scheduler = Scheduler(
            (s for d in self.domains for s in d.schedules), self.publisher.send, self.clock
        )
        self._schedule_interval = schedule_interval
        #: The WebSocket connections this process serves (`tctf run`'s ASGI app attaches
        #: them), what handlers post to through `ctx.connections`.
        self.connections = LocalConnections()
        self.mail_provider = mail_provider
        self._committed: anyio.Event | None = None
        services = Services(
            self.publisher,
            clock=self.clock,
            ids=self.ids,
            observers=observers,
            middleware=middleware,
            tracer_provider=tracer_provider,
            handler_metrics=metrics is not None,
        )
        self.metrics_writer = metrics
        self._metrics_interval = metrics_interval
        #: Each stateless consuming domain's table of idempotency records, where the tables
        #: are shared with other processes (DynamoDB); in memory, one process holds every
        #: consumer, and the dispatcher's in-process store is just as shared and much cheaper.
        self.idempotency_tables = (
            {}
            if tables is memory_tables
            else {
                name: tables(spec, self.clock)
                for name, spec in self.topology.idempotency_tables.items()
            }
        )
        self.dispatchers = {
            domain.name: assemble(
                domain,
                replace(services, on_commit=partial(self._wake_relay, domain.name)),
                table=self.tables.get(domain.name),
                idempotency_table=self.idempotency_tables.get(domain.name),
            )
            for domain in self.domains
        }

    def _relay_publisher(self, domain: str) -> Publisher:
        if self.tracing is None:
            return self.publisher
        return RelayPublisher(self.publisher, self.tracing, domain)

    def _park_in_memory(self, domain: str) -> Park:
        letters = self.outbox_dead_letters.setdefault(domain, [])

        async def park(item: dict[str, Any], reason: str) -> None:
            letters.append(
                DeadLetter(str(item["event_id"]), bytes(item["body"]), 1, reason, item["PK"])
            )

        return park

    def _wake_relay(self, domain: str) -> None:
        if domain in self._commits:
            self._commits[domain] += 1
            self._unrelayed.add(domain)
        if self._committed is not None:
            self._committed.set()

    async def relay(self, domains: Iterable[str] | None = None) -> int:
        """One pass of the outbox relays of `domains` (all by default); how many events
        were published."""
        published = 0
        for domain in list(self.relays if domains is None else domains):
            relay, commits = self.relays[domain], self._commits[domain]
            count = await relay.relay_once()
            if not count and not relay.keys_found and self._commits[domain] == commits:
                self._unrelayed.discard(domain)
            published += count
        self._relayed += published
        return published

    async def settle(self, timeout: float = 120.0) -> None:
        """Return once the domains are quiet: the schedules now due fired, every record
        handled or dead-lettered (`transport.settle()`), every outbox empty, and nothing
        fired or relayed in the meantime, by this call or by the runtime's own loops.

        Made for a runtime serving on its own (pollers, relay and schedule loops): a test
        moves the clock, then settles. Each round looks again; once `timeout` seconds pass
        without a quiet round, `OutboxNotDrained` names the outboxes still holding events.
        """
        deadline = anyio.current_time() + timeout
        while True:
            relayed = self._relayed
            fired = await self.scheduler.fire_due()
            await self.transport.settle()
            await self.relay(self._unrelayed)
            if not fired and not self._unrelayed and self._relayed == relayed:
                return
            if anyio.current_time() > deadline:
                raise OutboxNotDrained(
                    f"not quiet after {timeout:g}s: "
                    + (
                        f"the outbox of {', '.join(sorted(self._unrelayed))} still holds events"
                        if self._unrelayed
                        else "events were still being fired or relayed"
                    )
                )

    def flush_metrics(self) -> list[dict[str, Any]]:
        """Write every domain's metrics now (nothing without a writer); the documents."""
        if self.metrics_writer is None:
            return []
        return self.metrics_writer.flush(
            self.metrics, *(dispatcher.metrics for dispatcher in self.dispatchers.values())
        )

    async def _flush_metrics_forever(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            self.flush_metrics()

    async def _relay_forever(self, interval: float) -> None:
        while True:
            committed = self._committed = anyio.Event()
            try:
                published = await self.relay(self._unrelayed)
            except Exception:
                _log.exception("outbox relay pass failed; retrying in %ss", interval)
                published = 0
            if not published:
                with anyio.move_on_after(interval):
                    await committed.wait()

    async def _fire_schedules_forever(self, interval: float) -> None:
        while True:
            try:
                await self.scheduler.fire_due()
            except Exception:
                _log.exception("firing schedules failed; retrying in %ss", interval)
            # Real time, whatever the clock: this loop looks at the clock, it does not move
            # it (a ManualClock's sleep would advance time and fire everything at once).
            await anyio.sleep(interval)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Serve every domain's queues until the block exits, then stop the consumers."""
        token = current_connections.set(self.connections)
        mail_token = current_mail_provider.set(self.mail_provider)
        policy_token = current_token_policy.set(self.topology.token_policy)
        try:
            async with self._serving() as runtime:
                yield runtime
        finally:
            current_token_policy.reset(policy_token)
            current_mail_provider.reset(mail_token)
            current_connections.reset(token)

    @asynccontextmanager
    async def _serving(self) -> AsyncIterator[Runtime]:
        async with anyio.create_task_group() as group:
            await group.start(self.transport.serve, self.dispatchers)
            if self.relays and self._relay_interval is not None:
                group.start_soon(self._relay_forever, self._relay_interval)
            if self.metrics_writer is not None:
                group.start_soon(self._flush_metrics_forever, self._metrics_interval)
            if self.topology.schedules and self._schedule_interval is not None:
                group.start_soon(self._fire_schedules_forever, self._schedule_interval)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()
        self.flush_metrics()

    def context(self, source: str, correlation_id: str | None = None) -> Context:
        """A context for publishing from outside a handler (an API route, a script)."""
        dispatcher = self.dispatchers.get(source)
        return Context(
            source,
            clock=self.clock,
            ids=self.ids,
            metrics=dispatcher.metrics if dispatcher is not None else self.metrics,
            correlation_id=correlation_id,
            table=self.tables.get(source),
            on_commit=partial(self._wake_relay, source),
            sender=self._domains_by_name.get(source),
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
