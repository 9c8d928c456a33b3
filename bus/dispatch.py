"""The one path from a batch of delivered records to handler calls.

Lambda, the in-memory transport and the SQS poller all hand batches to `Dispatcher.dispatch`
and act on the records it reports as failed (retry later) or parked (dead-letter now).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from bus.clock import Clock, SystemClock
from bus.context import Context, Extend
from bus.domain import Domain, Subscription
from bus.envelope import Envelope
from bus.errors import (
    AlreadyHandled,
    ConfigurationError,
    MisroutedRecord,
    PermanentError,
    Rejected,
    UnknownMessageType,
)
from bus.ids import IdGenerator
from bus.messages import Message, Task
from bus.metrics import Metrics
from bus.middleware import (
    BatchClaims,
    BatchIdempotencyStore,
    Delivery,
    Handler,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    Middleware,
    attempts,
    current_batch,
    idempotency_key,
    once,
)
from bus.topology import Purpose

if TYPE_CHECKING:
    from bus.storage.table import Put, Table

#: Where the traceback of a handler call that raised is logged, beside its delivery line
#: (`tctf.delivery`, whose lines are one per outcome and carry no traceback).
_raised = logging.getLogger("tctf.failures")


class Publisher(Protocol):
    """Where handler output goes: events to the platform topic, tasks to their queues."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None: ...

    async def send(self, envelopes: Sequence[Envelope]) -> None: ...


class Record(NamedTuple):
    """One delivered message: the transport's id for it, its body and delivery count, and
    where it came from: an events queue or invocation, or its domain's task queue, and the
    type it was routed by. A named tuple: immutable, and built for every delivery at a
    third of a frozen dataclass's cost."""

    id: str
    #: The encoded envelope, or the envelope object already parsed by an adapter.
    body: bytes | str | Mapping[str, Any]
    receive_count: int = 1
    #: "tasks" only for a record from the receiving domain's own task queue; anything else
    #: (an events queue, an SNS or EventBridge invocation) is "events".
    purpose: Purpose = "events"
    #: The type the record was routed by (the SNS/SQS `type` message attribute, EventBridge's
    #: `detail-type`); None when the transport carried none.
    type_attribute: str | None = None
    #: Keeps this record hidden from other consumers `seconds` more from now (SQS
    #: ChangeMessageVisibility); None where the transport cannot.
    extend_visibility: Extend | None = None
    #: When the transport accepted the record, in epoch seconds (SQS `SentTimestamp`); None:
    #: the envelope's `time` stands for it.
    sent_at: float | None = None


Status = Literal["handled", "skipped", "filtered", "failed", "parked"]


class Outcome(NamedTuple):
    """What happened to one record at one handler; `handler` is None for record-level issues.
    A named tuple, as `Record` is, for the same reason."""

    domain: str
    record_id: str
    status: Status
    handler: str | None = None
    envelope: Envelope | None = None
    error: str | None = None
    #: How long the handler call took, through its middleware; None when none was called.
    duration_ms: float | None = None
    receive_count: int = 1
    #: `Record.sent_at`: when the transport accepted the record, if it says.
    sent_at: float | None = None


_new_outcome = tuple.__new__


@dataclass(slots=True)
class BatchResult:
    """Records to deliver again later (`failed`) and to dead-letter now (`parked`), by id."""

    failed: dict[str, str] = field(default_factory=dict)
    parked: dict[str, str] = field(default_factory=dict)


Observer = Callable[[Outcome], None]

#: Why a record was handed back untouched: the caller's deadline came first.
DEADLINE_REASON = "not started: the invocation deadline was near, delivered again later"


@dataclass(frozen=True, slots=True)
class _Route:
    subscription: Subscription
    call: Handler
    matches: Callable[[Mapping[str, Any]], bool] | None
    is_task: bool


class Dispatcher:
    """Turns records into handler calls for one domain, through its middleware."""

    def __init__(
        self,
        domain: Domain,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        idempotency_store: IdempotencyStore | None = None,
        middleware: Sequence[Middleware] = (),
        observer: Observer | None = None,
        table: Table | None = None,
        on_commit: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.domain = domain
        self._table = table
        self._on_commit = on_commit
        self.clock = clock or SystemClock()
        self.ids = ids or IdGenerator()
        #: What the domain's handlers record, until the runtime flushes it.
        self.metrics = metrics if metrics is not None else Metrics(domain.name)
        self._publisher = publisher
        self._observer = observer
        settings = domain.settings
        store = idempotency_store or InMemoryIdempotencyStore(self.clock, settings.idempotency_ttl)
        #: A store that can record a handled event inside the handler's own transaction.
        self._done_write: Callable[[str, str], Put] | None = getattr(store, "done_write", None)
        #: A store that claims a whole batch's keys in one call (one across the network).
        self._batch_store = store if isinstance(store, BatchIdempotencyStore) else None
        # User middleware runs inside the idempotency check and outside the retries: it sees
        # real deliveries only (not skipped duplicates), once however many attempts they take.
        handle_once = once(store, lease=settings.visibility_timeout)
        self._routes: dict[str, list[_Route]] = {}
        for sub in domain.subscriptions:
            call = attempts(
                _call_handler,
                attempts=settings.retry_attempts,
                backoff=settings.retry_backoff,
                clock=self.clock,
                seconds=settings.handler_timeout,
                publish=self._flush,
            )
            for wrap in reversed(middleware):
                call = wrap(call)
            self._routes.setdefault(sub.message.type, []).append(
                _Route(sub, handle_once(call), _matcher(sub.where), sub.is_task)
            )

    async def dispatch(
        self, records: Sequence[Record], *, deadline: Callable[[], bool] | None = None
    ) -> BatchResult:
        """Handle each record in order; report those to retry and those to park.

        `deadline`, asked before each record, says when to stop taking new ones (a Lambda
        nearing its timeout): the records not started are reported failed, so none is lost.
        """
        if self._batch_store is not None and len(records) > 1:
            return await self._dispatch_claimed(records, self._batch_store, deadline)
        result = BatchResult()
        for index, record in enumerate(records):
            if deadline is not None and deadline():
                for late in records[index:]:
                    result.failed[late.id] = DEADLINE_REASON
                break
            # `dispatch_one`, written out: a coroutine call fewer per record.
            try:
                envelope, routes = self._open(record)
            except PermanentError as error:
                self._observe(record, "parked", None, None, str(error))
                result.parked[record.id] = str(error)
                continue
            if len(routes) == 1:
                status, reason = await self._run(routes[0], envelope, record)
            else:
                status, reason = await self._handle(record, envelope, routes)
            if status == "failed":
                result.failed[record.id] = reason
            elif status == "parked":
                result.parked[record.id] = reason
        return result

    async def _dispatch_claimed(
        self,
        records: Sequence[Record],
        store: BatchIdempotencyStore,
        deadline: Callable[[], bool] | None,
    ) -> BatchResult:
        """`dispatch`, the records' idempotency claims taken in one store call before their
        handlers run and their effects recorded in one after (`BatchClaims`). A record whose
        effect could not be recorded (its claim was lost) fails, as it would alone."""
        batch = BatchClaims(store, self.domain.settings.visibility_timeout)
        opened = await self._claim(batch, records)
        result = BatchResult()
        scope = current_batch.set(batch)
        try:
            for index, record in enumerate(records):
                if deadline is not None and deadline():
                    for late in records[index:]:
                        result.failed[late.id] = DEADLINE_REASON
                    break
                batch.record_id = record.id
                ready = opened[index]
                if ready is None:
                    status, reason = await self.dispatch_one(record)
                else:
                    status, reason = await self._handle(record, *ready)
                if status == "failed":
                    result.failed[record.id] = reason
                elif status == "parked":
                    result.parked[record.id] = reason
        except BaseException:
            _settle_behind(batch)
            raise
        finally:
            current_batch.reset(scope)
        by_id = {record.id: record for record in records}
        for completion, error in await batch.settle():
            delivery = completion.delivery
            handler = delivery.subscription.name
            reason = f"{handler}: {type(error).__name__}: {error}"
            record = by_id[completion.record_id]
            self._observe(record, "failed", handler, delivery.envelope, reason)
            result.parked.pop(completion.record_id, None)
            earlier = result.failed.get(completion.record_id)
            result.failed[completion.record_id] = f"{earlier}; {reason}" if earlier else reason
        return result

    async def _claim(
        self, batch: BatchClaims, records: Sequence[Record]
    ) -> list[tuple[Envelope, list[_Route]] | None]:
        """Claim, in one call, the key of every handler each record will run; each record's
        envelope and routes (None for a record that is parked when its turn comes)."""
        opened: list[tuple[Envelope, list[_Route]] | None] = []
        keys: list[str] = []
        for record in records:
            try:
                envelope, routes = self._open(record)
            except PermanentError:
                opened.append(None)
                continue
            opened.append((envelope, routes))
            keys.extend(
                idempotency_key(route.subscription.name, envelope.id)
                for route in routes
                if _will_run(route, envelope.data)
            )
        await batch.claim(keys)
        return opened

    async def dispatch_one(self, record: Record) -> tuple[Status, str]:
        """Run every matching handler for one record; the worst outcome decides its fate."""
        try:
            envelope, routes = self._open(record)
        except PermanentError as error:
            self._observe(record, "parked", None, None, str(error))
            return "parked", str(error)
        return await self._handle(record, envelope, routes)

    def _open(self, record: Record) -> tuple[Envelope, list[_Route]]:
        """The record's envelope and the routes of its type; `PermanentError` if it can have
        none (unreadable, misrouted, or of a type the domain does not handle)."""
        body = record.body
        envelope = (
            Envelope.decode(body) if isinstance(body, (bytes, str)) else Envelope.from_dict(body)
        )
        if record.type_attribute is not None and record.type_attribute != envelope.type:
            raise MisroutedRecord(
                f"record was routed as {record.type_attribute!r} but its body is "
                f"{envelope.type!r}; a body may not claim another type than its route"
            )
        routes = self._routes.get(envelope.type)
        if routes is None:
            raise UnknownMessageType(
                f"domain {self.domain.name} has no handler for {envelope.type!r} "
                f"(handles {', '.join(sorted(self._routes)) or 'nothing'})"
            )
        if record.purpose != "tasks" and routes[0].is_task:
            raise MisroutedRecord(
                f"task {envelope.type!r} came from an events queue, topic or bus; tasks "
                f"are taken only from {self.domain.name}'s task queue"
            )
        return envelope, routes

    async def _handle(
        self, record: Record, envelope: Envelope, routes: list[_Route]
    ) -> tuple[Status, str]:
        if len(routes) == 1:  # the common case, without the bookkeeping of several
            status, reason = await self._run(routes[0], envelope, record)
            return (status if status == "failed" or status == "parked" else "handled"), reason
        models: dict[type[Message], Message] = {}
        worst: Status = "handled"
        reasons: list[str] = []
        for route in routes:
            status, reason = await self._run(route, envelope, record, models)
            if status == "failed" or (status == "parked" and worst != "failed"):
                worst = status
            if reason:
                reasons.append(reason)
        return worst, "; ".join(reasons)

    async def _run(
        self,
        route: _Route,
        envelope: Envelope,
        record: Record,
        models: dict[type[Message], Message] | None = None,
    ) -> tuple[Status, str]:
        """One handler's call for one record. `models` shares the validated message between
        the routes of one record."""
        sub = route.subscription
        data: Any = envelope.data  # the decoded JSON object: this envelope was delivered
        try:
            if route.matches is not None and not route.matches(data):
                return "filtered", ""
        except Exception as error:  # a payload the filter cannot read; no retry reads it
            reason = f"{sub.name}: its filter cannot read the payload: {type(error).__name__}"
            self._observe(record, "parked", sub.name, envelope, reason)
            return "parked", reason
        started = perf_counter()
        try:
            shared = None if models is None else models.get(sub.message)
            if shared is not None:
                message = shared
            else:
                message = sub.message.read(envelope.dataversion, data)
                if models is not None:
                    models[sub.message] = message
            context = Context(
                self.domain.name,
                clock=self.clock,
                ids=self.ids,
                metrics=self.metrics,
                envelope=envelope,
                handler=sub.name,
                done_record=(
                    partial(self._done_write, idempotency_key(sub.name, envelope.id))
                    if self._done_write is not None
                    else None
                ),
                table=self._table,
                on_commit=self._on_commit,
                sender=self.domain,
                extend_visibility=record.extend_visibility,
            )
            await route.call(Delivery(sub, envelope, message, context, record.receive_count))
        except AlreadyHandled:
            self._observe(record, "skipped", sub.name, envelope, None, started)
            return "skipped", ""
        except PermanentError as error:
            if not isinstance(error, Rejected):  # a rejection is the handler's own verdict
                level = logging.ERROR if isinstance(error, ConfigurationError) else logging.WARNING
                self._log_raised(level, sub.name, envelope, record, error)
            reason = f"{sub.name}: {error}"
            self._observe(record, "parked", sub.name, envelope, reason, started)
            return "parked", reason
        except Exception as error:
            self._log_raised(logging.WARNING, sub.name, envelope, record, error)
            reason = f"{sub.name}: {type(error).__name__}: {error}"
            self._observe(record, "failed", sub.name, envelope, reason, started)
            return "failed", reason
        self._observe(record, "handled", sub.name, envelope, None, started)
        return "handled", ""

    def _log_raised(
        self,
        level: int,
        handler: str,
        envelope: Envelope,
        record: Record,
        error: BaseException,
    ) -> None:
        """The traceback of a handler call that raised, once per attempt: the delivery line
        keeps only the error's message."""
        if _raised.isEnabledFor(level):
            _raised.log(
                level,
                "%s raised %s: %s",
                handler,
                type(error).__name__,
                error,
                exc_info=error,
                extra={
                    "service": self.domain.name,
                    "correlation_id": envelope.correlationid,
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "handler": handler,
                    "receive_count": record.receive_count,
                },
            )

    async def _flush(self, envelopes: list[Envelope]) -> None:
        await flush(self._publisher, envelopes)

    def _observe(
        self,
        record: Record,
        status: Status,
        handler: str | None,
        envelope: Envelope | None,
        error: str | None,
        started: float | None = None,
    ) -> None:
        if self._observer is not None:
            duration = None if started is None else (perf_counter() - started) * 1000
            # tuple.__new__ skips the named tuple's Python-level __new__: once per delivery.
            outcome = _new_outcome(
                Outcome,
                (
                    self.domain.name,
                    record.id,
                    status,
                    handler,
                    envelope,
                    error,
                    duration,
                    record.receive_count,
                    record.sent_at,
                ),
            )
            self._observer(outcome)


async def flush(publisher: Publisher, envelopes: Sequence[Envelope]) -> None:
    """Hand staged envelopes to the publisher: events to the topic, tasks to their queues."""
    if len(envelopes) == 1:  # most handlers stage one message: no sorting to do
        if isinstance(envelopes[0].data, Task):
            await publisher.send(envelopes)
        else:
            await publisher.publish(envelopes)
        return
    tasks = [e for e in envelopes if isinstance(e.data, Task)]
    events = [e for e in envelopes if not isinstance(e.data, Task)] if tasks else envelopes
    if events:
        await publisher.publish(events)
    if tasks:
        await publisher.send(tasks)


#: Batches being recorded after their dispatch was cut off, kept until done.
_settling: set[asyncio.Task[Any]] = set()


def _settle_behind(batch: BatchClaims) -> None:
    """Record what a batch cut off mid-way (the poller cancels one at its visibility timeout)
    had handled, in a task of its own that the cancellation does not reach, so that the
    batch, delivered again whole, skips those records as it would have before the cut."""
    task = asyncio.ensure_future(batch.settle())
    _settling.add(task)
    task.add_done_callback(_settling.discard)


def _will_run(route: _Route, data: Any) -> bool:
    """Whether the route's filter takes the payload (one it cannot read is parked, not run)."""
    try:
        return route.matches is None or route.matches(data)
    except Exception:
        return False


async def _call_handler(delivery: Delivery) -> None:
    await delivery.subscription.handler(delivery.message, delivery.context)


def _matcher(where: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], bool] | None:
    if where is None:
        return None
    from bus.routing import compile_event_pattern

    return compile_event_pattern(dict(where)).match
