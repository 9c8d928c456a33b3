"""The in-memory transport: SNS fan-out to SQS-like queues, with AWS's delivery semantics.

Visibility timeouts, receive counts, batches of at most ten, partial batch failure, DLQs with
redrive, message size limits. Given a seed and a `ManualClock` a run replays exactly; `Faults`
adds duplicates, reordering and delays from the same seed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from bus.clock import Clock, ManualClock, SystemClock
from bus.dispatch import Dispatcher, Record
from bus.envelope import Envelope, check_message_size
from bus.errors import ConfigurationError
from bus.ids import MessageIds
from bus.limits import SNS, SQS, ServiceLimits, path_limit
from bus.observability import log_dead_lettered
from bus.topology import Purpose, QueueSpec, Topology
from bus.transport import TASK_STATUS_IGNORED, DeadLetter

if TYPE_CHECKING:
    import anyio
    from anyio.abc import TaskStatus


@dataclass(frozen=True, slots=True)
class Faults:
    """Misbehaviour AWS is allowed, injected on purpose so handlers are tested against it."""

    #: Chance that a delivery to a queue is made twice (at-least-once delivery).
    duplicate_rate: float = 0.0
    #: Receive in random order instead of arrival order (standard queues promise no order).
    reorder: bool = False
    #: Upper bound, in seconds, of a random delay before a message first becomes visible.
    max_delay: float = 0.0


NO_FAULTS = Faults()
_log = logging.getLogger("bus.memory")


class QueuedMessage:
    """A message in a queue, with SQS's bookkeeping."""

    __slots__ = (
        "body",
        "dead_reason",
        "deleted",
        "generation",
        "hidden_until",
        "last_error",
        "message_id",
        "receive_count",
        "sent_at",
        "type_attribute",
    )

    def __init__(
        self, message_id: str, body: bytes, sent_at: float, type_attribute: str | None = None
    ) -> None:
        self.message_id = message_id
        self.body = body
        self.sent_at = sent_at
        #: The `type` message attribute it was routed by, as SNS carries it beside the body.
        self.type_attribute = type_attribute
        self.receive_count = 0
        self.generation = 0  # bumps on every receive: a stale receipt cannot delete
        self.hidden_until = 0.0
        self.deleted = False
        self.last_error: str | None = None
        self.dead_reason: str | None = None


class MemoryQueue:
    """One SQS-like queue: ready messages, hidden ones (in flight or delayed), and a DLQ."""

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        visibility_timeout: float = 30.0,
        max_receive_count: int | None = None,
        dlq: MemoryQueue | None = None,
        rng: random.Random | None = None,
        reorder: bool = False,
        domain: str | None = None,
    ) -> None:
        self.name = name
        #: The domain whose queue it is, the `service` of its log lines.
        self.domain = domain
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.dlq = dlq
        self._clock = clock
        self._rng = rng or random.Random()
        self._reorder = reorder
        self._ready: deque[QueuedMessage] = deque()
        #: Received messages, in the order their visibility ends: every receive hides for
        #: the same timeout, so appending keeps the order without a heap.
        self._in_flight: deque[tuple[float, int, int, QueuedMessage]] = deque()
        #: Messages hidden for other spans (delayed sends, extended visibility), soonest first.
        self._hidden: list[tuple[float, int, int, QueuedMessage]] = []
        self._seq = itertools.count()
        self._live = 0
        self._arrival: anyio.Event | None = None

    def __len__(self) -> int:
        """Messages held: ready, in flight or delayed (ApproximateNumberOfMessages*)."""
        return self._live

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def next_visible_at(self) -> float | None:
        """When the earliest hidden message becomes visible again, if any."""
        in_flight, hidden = self._in_flight, self._hidden
        while in_flight and not self._is_current(in_flight[0]):
            in_flight.popleft()
        while hidden and not self._is_current(hidden[0]):
            heapq.heappop(hidden)
        if in_flight and hidden:
            return min(in_flight[0][0], hidden[0][0])
        if in_flight:
            return in_flight[0][0]
        return hidden[0][0] if hidden else None

    def send(self, message: QueuedMessage, delay: float = 0.0) -> None:
        self._live += 1
        if delay > 0:
            self._hide(message, self._clock.now() + delay)
        else:
            self._ready.append(message)
        if self._arrival is not None:
            self.notify()

    def receive(self, max_messages: int) -> list[tuple[QueuedMessage, int]]:
        """Take up to `max_messages` visible messages, hiding each for the visibility timeout.

        A message whose receive count would pass `max_receive_count` moves to the DLQ instead,
        as SQS's redrive policy does.
        """
        now = self._clock.now()
        self._promote(now)
        taken: list[tuple[QueuedMessage, int]] = []
        ready = self._ready
        until = now + self.visibility_timeout
        in_flight: deque[tuple[float, int, int, QueuedMessage]] | None = self._in_flight
        if in_flight and in_flight[-1][0] > until:  # the clock went back: keep them apart
            in_flight = None
        while ready and len(taken) < max_messages:
            if self._reorder and len(ready) > 1:
                ready.rotate(-self._rng.randrange(len(ready)))
            message = ready.popleft()
            if message.deleted:  # deleted or dead-lettered after its visibility ran out
                continue
            message.receive_count += 1
            if self.max_receive_count is not None and (
                message.receive_count > self.max_receive_count
            ):
                self._dead_letter(
                    message,
                    f"received {message.receive_count - 1} times without success "
                    f"(max_receive_count {self.max_receive_count}); last error: "
                    f"{message.last_error or 'visibility timeout expired'}",
                )
                continue
            generation = message.generation = message.generation + 1
            if in_flight is None:
                self._hide(message, until)
            else:
                message.hidden_until = until
                in_flight.append((until, next(self._seq), generation, message))
            taken.append((message, generation))
        return taken

    def delete(self, message: QueuedMessage, generation: int) -> bool:
        """Delete a received message; a receipt from an earlier receive no longer works."""
        if message.deleted or message.generation != generation:
            return False
        message.deleted = True
        self._live -= 1
        return True

    async def extend(self, message: QueuedMessage, generation: int, seconds: float) -> None:
        """Keep a received message hidden `seconds` from now (ChangeMessageVisibility); a
        stale receipt changes nothing."""
        if not message.deleted and message.generation == generation:
            self._hide(message, self._clock.now() + seconds)

    def fail(self, message: QueuedMessage, generation: int, reason: str) -> None:
        """Note why a delivery failed; the message reappears when its visibility ends."""
        if message.generation == generation:
            message.last_error = reason

    def park(self, message: QueuedMessage, generation: int, reason: str) -> None:
        """Move a received message to the DLQ now: retrying it cannot succeed."""
        if not message.deleted and message.generation == generation:
            self._dead_letter(message, reason)

    def messages(self) -> list[QueuedMessage]:
        """The visible messages, oldest first (a DLQ's content: nothing consumes it)."""
        return [m for m in self._ready if not m.deleted]

    def drain(self) -> list[QueuedMessage]:
        """Remove and return every visible message (redrive empties a DLQ this way)."""
        messages = self.messages()
        self._ready.clear()
        self._live -= len(messages)
        return messages

    def notify(self) -> None:
        """Wake consumers waiting for a message."""
        if self._arrival is not None:
            self._arrival.set()
            self._arrival = None

    async def wait(self, timeout: float | None) -> None:
        """Wait until a message arrives, `notify()` is called, or `timeout` seconds pass."""
        import anyio  # loaded by consumers, not by a Lambda that only publishes

        if self._arrival is None:
            self._arrival = anyio.Event()
        arrival = self._arrival
        with anyio.move_on_after(timeout):
            await arrival.wait()

    def _hide(self, message: QueuedMessage, until: float) -> None:
        message.hidden_until = until
        heapq.heappush(self._hidden, (until, next(self._seq), message.generation, message))

    def _is_current(self, entry: tuple[float, int, int, QueuedMessage]) -> bool:
        message = entry[3]
        return (
            not message.deleted
            and message.generation == entry[2]
            and message.hidden_until == entry[0]  # not since hidden for longer
        )

    def promote(self) -> None:
        """Make hidden messages whose time has come visible again."""
        self._promote(self._clock.now())

    def _promote(self, now: float) -> None:
        in_flight, hidden, ready = self._in_flight, self._hidden, self._ready
        while True:  # the two merged in (time, sequence) order, as one heap would give them
            if in_flight and in_flight[0][0] <= now and not (hidden and hidden[0] < in_flight[0]):
                entry = in_flight.popleft()
            elif hidden and hidden[0][0] <= now:
                entry = heapq.heappop(hidden)
            else:
                return
            if self._is_current(entry):
                ready.append(entry[3])

    def _dead_letter(self, message: QueuedMessage, reason: str) -> None:
        message.deleted = True
        self._live -= 1
        if self.dlq is None:
            raise ConfigurationError(f"queue {self.name} has no DLQ to move a message to")
        copy = QueuedMessage(
            message.message_id, message.body, message.sent_at, message.type_attribute
        )
        copy.receive_count = message.receive_count
        copy.dead_reason = reason
        self.dlq.send(copy)
        log_dead_lettered(
            _log,
            service=self.domain,
            queue=self.name,
            dlq=self.dlq.name,
            message_id=message.message_id,
            body=message.body,
            type_attribute=message.type_attribute,
            reason=reason,
            receive_count=message.receive_count,
        )


class InMemoryTransport:
    """SNS→SQS semantics in one process: fan-out by subscription, queues per domain."""

    #: Publishing goes through SNS into SQS: the smaller limit applies.
    publish_limits: ServiceLimits = path_limit(SNS, SQS)
    #: Tasks go straight to SQS.
    send_limits: ServiceLimits = SQS

    def __init__(
        self,
        topology: Topology,
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.topology = topology
        self.clock = clock or SystemClock()
        self.faults = faults
        self._rng = random.Random(seed)
        self._message_ids = MessageIds(None if seed is None else self._rng.getrandbits(64))
        self.queues: dict[str, MemoryQueue] = {}
        self._specs: dict[str, QueueSpec] = {}
        #: Per event type, the queues subscribed to it, in topology order, each with the
        #: content filters a copy must pass (None: it takes every event of the type).
        self._subscribers: dict[str, list[tuple[MemoryQueue, list[Callable[..., bool]] | None]]]
        self._subscribers = {}
        for spec in topology.queues:
            dlq = MemoryQueue(spec.dlq, clock=self.clock, domain=spec.domain)
            queue = MemoryQueue(
                spec.name,
                clock=self.clock,
                visibility_timeout=spec.visibility_timeout,
                max_receive_count=spec.max_receive_count,
                dlq=dlq,
                rng=self._rng,
                reorder=faults.reorder,
                domain=spec.domain,
            )
            self.queues[spec.name] = queue
            self.queues[spec.dlq] = dlq
            self._specs[spec.name] = spec
            if spec.purpose == "events":
                filters = _filters(topology, spec)
                for message_type in spec.message_types:
                    self._subscribers.setdefault(message_type, []).append(
                        (queue, filters.get(message_type))
                    )
        #: Whether any copy may be duplicated or delayed: otherwise each is sent as it is.
        self._faulty = bool(faults.duplicate_rate or faults.max_delay)
        self._busy = 0
        self._changed: anyio.Event | None = None

    # -- Publisher -------------------------------------------------------------------------

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Fan each event out to every queue whose subscription accepts it.

        Every envelope is encoded and size-checked before any is delivered, so a call that
        fails delivers nothing.
        """
        bodies = [self._encode(e, self.publish_limits) for e in envelopes]
        now = self.clock.now()
        for envelope, body in zip(envelopes, bodies, strict=True):
            data: Mapping[str, Any] | None = None
            for queue, matchers in self._subscribers.get(envelope.type, ()):
                if matchers is not None:
                    if data is None:
                        data = envelope.data_dict()
                    if not any(match(data) for match in matchers):
                        continue
                self._deliver(queue, body, envelope.type, now)
        self._signal()

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        """Put each task on the task queue of the domain that consumes it."""
        targets = [self._task_queue(e) for e in envelopes]
        bodies = [self._encode(e, self.send_limits) for e in envelopes]
        now = self.clock.now()
        for queue, body, envelope in zip(targets, bodies, envelopes, strict=True):
            self._deliver(queue, body, envelope.type, now)
        self._signal()

    def _task_queue(self, envelope: Envelope) -> MemoryQueue:
        name = self.topology.task_queue_name(envelope.type, getattr(envelope.data, "domain", None))
        queue = self.queues.get(name)
        if queue is None:
            raise ConfigurationError(
                f"task {envelope.type} goes to queue {name}, which no domain here consumes"
            )
        return queue

    def _encode(self, envelope: Envelope, limits: ServiceLimits) -> bytes:
        body = envelope.encode()
        check_message_size(envelope, body, limits)
        return body

    def _deliver(self, queue: MemoryQueue, body: bytes, type_attribute: str, now: float) -> None:
        """Send one copy (`now`: when it was sent), or under faults maybe two, maybe late."""
        if not self._faulty:
            queue.send(QueuedMessage(self._message_ids(), body, now, type_attribute))
            return
        faults = self.faults
        copies = 2 if faults.duplicate_rate and self._rng.random() < faults.duplicate_rate else 1
        for _ in range(copies):
            delay = self._rng.uniform(0, faults.max_delay) if faults.max_delay else 0.0
            message = QueuedMessage(self._message_ids(), body, now, type_attribute)
            queue.send(message, delay)

    # -- Delivery --------------------------------------------------------------------------

    async def serve(
        self,
        dispatchers: Mapping[str, Dispatcher],
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> None:
        """Run each domain queue's consumers until cancelled."""
        import anyio

        async with anyio.create_task_group() as group:
            for spec in self.topology.queues:
                dispatcher = dispatchers.get(spec.domain)
                if dispatcher is None:
                    continue
                queue = self.queues[spec.name]
                for _ in range(spec.concurrency):
                    group.start_soon(self._consume, queue, spec, dispatcher)
            task_status.started()

    async def _consume(self, queue: MemoryQueue, spec: QueueSpec, dispatcher: Dispatcher) -> None:
        while True:
            received = queue.receive(spec.batch_size)
            if not received:
                self._signal()
                await queue.wait(self._until_visible(queue))
                continue
            self._busy += 1
            try:
                records = [
                    Record(
                        m.message_id,
                        m.body,
                        m.receive_count,
                        spec.purpose,
                        m.type_attribute,
                        partial(queue.extend, m, g),
                        m.sent_at,  # SQS's SentTimestamp: the record's age counts from it
                    )
                    for m, g in received
                ]
                result = await dispatcher.dispatch(records)
                if not (result.parked or result.failed):
                    for message, generation in received:
                        queue.delete(message, generation)
                    continue
                for message, generation in received:
                    parked = result.parked.get(message.message_id)
                    failed = result.failed.get(message.message_id)
                    if parked is not None:
                        queue.park(message, generation, parked)
                    elif failed is not None:
                        queue.fail(message, generation, failed)
                    else:
                        queue.delete(message, generation)
            finally:
                self._busy -= 1
                self._signal()

    def _until_visible(self, queue: MemoryQueue) -> float | None:
        at = queue.next_visible_at()
        if at is None:
            return None
        return max(at - self.clock.now(), 0.0) + 0.001

    # -- Inspection ------------------------------------------------------------------------

    def _idle(self) -> bool:
        return self._busy == 0 and not any(
            q.ready_count for q in self.queues.values() if q.dlq is not None
        )

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def settle(self) -> None:
        """Wait until every queue is empty: all records handled or dead-lettered.

        With a `ManualClock`, time is advanced to the next visibility expiry whenever the
        system is otherwise idle, so retries after a visibility timeout happen at once.
        """
        import anyio

        while True:
            while not self._idle():
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
            pending = [
                at
                for q in self.queues.values()
                if q.dlq is not None
                if (at := q.next_visible_at()) is not None
            ]
            if not pending:
                if self._idle():
                    return
                continue
            wait = min(pending) - self.clock.now()
            if isinstance(self.clock, ManualClock):
                self.clock.advance(max(wait, 0.0))
            elif wait > 0:
                await anyio.sleep(wait)
            for queue in self.queues.values():
                queue.promote()
                queue.notify()

    async def dead_letters(self, domain: str, purpose: Purpose = "events") -> list[DeadLetter]:
        spec = self.topology.require_queue(domain, purpose)
        return [
            DeadLetter(m.message_id, m.body, m.receive_count, m.dead_reason)
            for m in self.queues[spec.dlq].messages()
        ]

    async def redrive(self, domain: str, purpose: Purpose = "events") -> int:
        spec = self.topology.require_queue(domain, purpose)
        source = self.queues[spec.name]
        moved = self.queues[spec.dlq].drain()
        for message in moved:
            source.send(
                QueuedMessage(
                    message.message_id, message.body, self.clock.now(), message.type_attribute
                )
            )
        self._signal()
        return len(moved)

    def depth(self, queue_name: str) -> int:
        """Messages held by a queue (ready, in flight or delayed)."""
        return len(self.queues[queue_name])


def in_memory(
    seed: int | None = None, faults: Faults = NO_FAULTS
) -> Callable[[Topology, Clock], InMemoryTransport]:
    """A transport factory for `Runtime`: the in-memory transport, seeded, with faults."""

    def build(topology: Topology, clock: Clock) -> InMemoryTransport:
        return InMemoryTransport(topology, clock=clock, seed=seed, faults=faults)

    return build


def _filters(topology: Topology, spec: QueueSpec) -> dict[str, list[Callable[..., bool]]]:
    """Per event type, the content filters of a queue; a type with an unfiltered handler
    needs none."""
    subs = topology.subscriptions_of(spec.name)
    unfiltered = {s.message_type for s in subs if s.where is None}
    filters: dict[str, list[Callable[..., bool]]] = {}
    for sub in subs:
        if sub.where is not None and sub.message_type not in unfiltered:
            from bus.routing import compile_event_pattern

            filters.setdefault(sub.message_type, []).append(
                compile_event_pattern(dict(sub.where)).match
            )
    return filters
