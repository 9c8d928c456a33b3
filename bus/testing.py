"""A harness for tests: run chosen domains, drive them, wait for quiet, inspect the results.

Runs on the in-memory transport with a `ManualClock` and a seed by default, so every run
replays exactly; pass another transport factory to hold a real transport to the same tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel

from bus.client import current_clients
from bus.clock import Clock, ManualClock
from bus.dispatch import Outcome, Publisher, Status
from bus.domain import Domain
from bus.envelope import Envelope
from bus.errors import OutboxNotDrained
from bus.http import HttpRouter
from bus.ids import IdGenerator
from bus.mail import MailProvider
from bus.memory import NO_FAULTS, Faults, in_memory
from bus.messages import Event, Task
from bus.middleware import Middleware
from bus.runtime import Runtime, TableFactory, TransportFactory, memory_tables
from bus.topology import Purpose, Topology
from bus.transport import DeadLetter, Transport

#: Seconds between looks at a manual clock that has no timer due while every task waits.
_NOTHING_DUE_POLL = 0.05

#: Relay passes in a row that may publish nothing while events stay pending before `settle`
#: gives up: a pass that publishes and then fails to delete reports nothing published.
STUCK_RELAY_PASSES = 5


class RecordingPublisher:
    """Forwards to the transport and keeps every envelope that went through."""

    def __init__(self, inner: Publisher, log: list[Envelope]) -> None:
        self._inner = inner
        self._log = log

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await self._inner.publish(envelopes)
        self._log.extend(envelopes)

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        await self._inner.send(envelopes)
        self._log.extend(envelopes)


class Harness:
    """`async with Harness(users, messaging) as h:` then `await h.publish(...)`, `await h.settle()`.

    `published` holds every envelope that left a publisher; `outcomes` every handler result.
    """

    def __init__(
        self,
        *domains: Domain,
        transport: TransportFactory | None = None,
        seed: int = 0,
        faults: Faults = NO_FAULTS,
        clock: Clock | None = None,
        app: str = "tctf",
        tables: TableFactory = memory_tables,
        middleware: Sequence[Middleware] = (),
        tracer_provider: Any | None = None,
        mail_provider: MailProvider | None = None,
    ) -> None:
        self.clock = clock or ManualClock()
        self.published: list[Envelope] = []
        self.outcomes: list[Outcome] = []
        self.runtime = Runtime(
            domains,
            transport or in_memory(seed, faults),
            app=app,
            clock=self.clock,
            ids=IdGenerator(seed),
            observers=(self.outcomes.append,),
            publisher=lambda inner: RecordingPublisher(inner, self.published),
            tables=tables,
            relay_interval=None,
            schedule_interval=None,
            middleware=middleware,
            tracer_provider=tracer_provider,
            mail_provider=mail_provider,
        )
        #: The domains' HTTP routes, in process; also how their handlers reach each other
        #: through `ctx.client` while the harness runs.
        self.router = HttpRouter(
            self.runtime.domains, self.runtime.publisher, self.runtime.context, ids=self.runtime.ids
        )
        self._stack = AsyncExitStack()

    @property
    def transport(self) -> Transport:
        return self.runtime.transport

    @property
    def topology(self) -> Topology:
        return self.runtime.topology

    async def __aenter__(self) -> Harness:
        token = current_clients.set(self.router.clients)
        self._stack.callback(current_clients.reset, token)
        await self._stack.enter_async_context(self.runtime.running())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def publish(
        self, event: Event, *, source: str = "test", correlation_id: str | None = None
    ) -> Envelope:
        return await self.runtime.publish(event, source=source, correlation_id=correlation_id)

    async def send(self, task: Task, *, source: str = "test") -> Envelope:
        return await self.runtime.send(task, source=source)

    async def settle(self) -> None:
        """Fire the schedules now due, then wait until every record is handled or
        dead-lettered and every committed outbox event is published (advancing a manual
        clock).

        On a `ManualClock(bounds_handlers=True)`, whenever every task waits, the clock
        moves on to its next timer: a handler call hanging on anything but the test clock
        fails with TimeoutError at its `handler_timeout` of test time, at once.

        Raises `OutboxNotDrained` when outbox events stay pending through
        `STUCK_RELAY_PASSES` relay passes in a row that publish nothing.
        """
        if not (isinstance(self.clock, ManualClock) and self.clock.bounds_handlers):
            return await self._settle()
        async with anyio.create_task_group() as group:
            group.start_soon(_pass_time_while_all_wait, self.clock)
            await self._settle()
            group.cancel_scope.cancel()

    async def _settle(self) -> None:
        stuck = 0
        while True:
            await self.runtime.scheduler.fire_due()
            await self.transport.settle()
            if await self.runtime.relay():
                stuck = 0
                continue
            pending = [name for name, relay in self.runtime.relays.items() if await relay.pending()]
            if not pending:
                return
            stuck += 1
            if stuck >= STUCK_RELAY_PASSES:
                raise OutboxNotDrained(
                    f"the outbox of {', '.join(pending)} still holds events after "
                    f"{stuck} relay passes that published none (see the relay's log)"
                )

    async def redeliver(self, envelopes: Iterable[Envelope], *, times: int = 2) -> None:
        """Deliver each envelope `times` more times, as SQS may, then `settle()`: a domain's
        test redelivers what each of its handlers took, to show the effect stays single.

        Events are published again, tasks sent again to their domain's queue; the copies
        join `published` as the originals did.
        """
        tasks = {t for domain in self.runtime.domains for t in domain.task_types}
        for envelope in envelopes:
            copies = [envelope] * times
            if envelope.type in tasks:
                await self.runtime.publisher.send(copies)
            else:
                await self.runtime.publisher.publish(copies)
        await self.settle()

    def results(self, status: Status | None = None, handler: str | None = None) -> list[Outcome]:
        return [
            o
            for o in self.outcomes
            if (status is None or o.status == status) and (handler is None or o.handler == handler)
        ]

    def handled(self, handler: str | None = None) -> list[Outcome]:
        return self.results("handled", handler)

    def published_of(self, event_type: str) -> list[Envelope]:
        return [e for e in self.published if e.type == event_type]

    async def dead_letters(self, domain: str, purpose: Purpose = "events") -> list[DeadLetter]:
        return await self.transport.dead_letters(domain, purpose)

    async def redrive(self, domain: str, purpose: Purpose = "events") -> int:
        return await self.transport.redrive(domain, purpose)


async def _pass_time_while_all_wait(clock: ManualClock) -> None:
    """Move `clock` to its next timer (a handler call's time bound), and run it, whenever
    every other task waits: nothing else could move it, so test time would stand still."""
    while True:
        await anyio.wait_all_tasks_blocked()
        due = clock.next_timer()
        if due is None:
            await anyio.sleep(_NOTHING_DUE_POLL)
        else:
            clock.advance(max(due - clock.now(), 0.0))
            clock.run_due_timers()
            await anyio.lowlevel.checkpoint()
