"""The one path from a batch of delivered records to handler calls.

Lambda, the in-memory transport and the SQS poller all hand batches to `Dispatcher.dispatch`
and act on the records it reports as failed (retry later) or parked (dead-letter now).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from bus.clock import Clock, SystemClock
from bus.context import Context, Extend
from bus.domain import Domain, Subscription
from bus.envelope import Envelope
from bus.errors import AlreadyHandled, MisroutedRecord, PermanentError, UnknownMessageType
from bus.ids import IdGenerator
from bus.messages import Message, Task
from bus.metrics import Metrics
from bus.middleware import (
    Delivery,
    Handler,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    Middleware,
    correlation,
    idempotency,
    idempotency_key,
    retry,
    timeout,
)
from bus.topology import Purpose

if TYPE_CHECKING:
    from bus.storage.table import Put, Table


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
    ) -> None:
        self.domain = domain
        self._table = table
        self._on_commit = on_commit
        self.clock = clock or SystemClock()
        self.ids = ids or IdGenerator()
        self.metrics = Metrics()
        self._publisher = publisher
        self._observer = observer
        settings = domain.settings
        store = idempotency_store or InMemoryIdempotencyStore(self.clock, settings.idempotency_ttl)
        #: A store that can record a handled event inside the handler's own transaction.
        self._done_write: Callable[[str, str], Put] | None = getattr(store, "done_write", None)
        # Outermost first. User middleware sees real attempts only (not skipped duplicates);
        # the timeout bounds the handler, not the publishing of what it staged.
        stack: list[Middleware] = [
            correlation,
            idempotency(store, lease=settings.visibility_timeout),
            *middleware,
            retry(settings.retry_attempts, settings.retry_backoff, self.clock),
            self._publishing,
            timeout(settings.handler_timeout),
        ]
        self._routes: dict[str, list[_Route]] = {}
        for sub in domain.subscriptions:
            call: Handler = _call_handler
            for wrap in reversed(stack):
                call = wrap(call)
            self._routes.setdefault(sub.message.type, []).append(
                _Route(sub, call, _matcher(sub.where), sub.is_task)
            )

    async def dispatch(
        self, records: Sequence[Record], *, deadline: Callable[[], bool] | None = None
    ) -> BatchResult:
        """Handle each record in order; report those to retry and those to park.

        `deadline`, asked before each record, says when to stop taking new ones (a Lambda
        nearing its timeout): the records not started are reported failed, so none is lost.
        """
        result = BatchResult()
        for index, record in enumerate(records):
            if deadline is not None and deadline():
                for late in records[index:]:
                    result.failed[late.id] = DEADLINE_REASON
                break
            status, reason = await self.dispatch_one(record)
            if status == "failed":
                result.failed[record.id] = reason
            elif status == "parked":
                result.parked[record.id] = reason
        return result

    async def dispatch_one(self, record: Record) -> tuple[Status, str]:
        """Run every matching handler for one record; the worst outcome decides its fate."""
        try:
            body = record.body
            if isinstance(body, (bytes, str)):  # a tuple: cheaper to check than a union
                envelope = Envelope.decode(body)
            else:
                envelope = Envelope.from_dict(body)
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
            if routes[0].is_task and record.purpose != "tasks":
                raise MisroutedRecord(
                    f"task {envelope.type!r} came from an events queue, topic or bus; tasks "
                    f"are taken only from {self.domain.name}'s task queue"
                )
        except PermanentError as error:
            self._observe(record.id, "parked", None, None, str(error))
            return "parked", str(error)
        models: dict[type[Message], Message] = {}
        data = envelope.data
        if len(routes) == 1:  # the common case, without the bookkeeping of several
            status, reason = await self._run(routes[0], envelope, data, models, record)
            return (status if status == "failed" or status == "parked" else "handled"), reason
        worst: Status = "handled"
        reasons: list[str] = []
        for route in routes:
            status, reason = await self._run(route, envelope, data, models, record)
            if status == "failed" or (status == "parked" and worst != "failed"):
                worst = status
            if reason:
                reasons.append(reason)
        return worst, "; ".join(reasons)

    async def _run(
        self,
        route: _Route,
        envelope: Envelope,
        data: Any,
        models: dict[type[Message], Message],
        record: Record,
    ) -> tuple[Status, str]:
        sub = route.subscription
        try:
            if route.matches is not None and not route.matches(data):
                return "filtered", ""
        except Exception as error:  # a payload the filter cannot read; no retry reads it
            reason = f"{sub.name}: its filter cannot read the payload: {type(error).__name__}"
            self._observe(record.id, "parked", sub.name, envelope, reason)
            return "parked", reason
        try:
            message = models.get(sub.message)
            if message is None:
                message = models[sub.message] = sub.message.read(envelope.dataversion, data)
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
            self._observe(record.id, "skipped", sub.name, envelope, None)
            return "skipped", ""
        except PermanentError as error:
            reason = f"{sub.name}: {error}"
            self._observe(record.id, "parked", sub.name, envelope, reason)
            return "parked", reason
        except Exception as error:
            reason = f"{sub.name}: {type(error).__name__}: {error}"
            self._observe(record.id, "failed", sub.name, envelope, reason)
            return "failed", reason
        self._observe(record.id, "handled", sub.name, envelope, None)
        return "handled", ""

    def _publishing(self, handler: Handler) -> Handler:
        """Send what an attempt staged once it succeeds; a new attempt starts empty."""

        async def publishing(delivery: Delivery) -> None:
            context = delivery.context
            context.begin_attempt()
            await handler(delivery)
            if context.outbox:
                await flush(self._publisher, context.outbox)

        return publishing

    def _observe(
        self,
        record_id: str,
        status: Status,
        handler: str | None,
        envelope: Envelope | None,
        error: str | None,
    ) -> None:
        if self._observer is not None:
            self._observer(Outcome(self.domain.name, record_id, status, handler, envelope, error))


async def flush(publisher: Publisher, envelopes: Sequence[Envelope]) -> None:
    """Hand staged envelopes to the publisher: events to the topic, tasks to their queues."""
    tasks = [e for e in envelopes if isinstance(e.data, Task)]
    events = [e for e in envelopes if not isinstance(e.data, Task)] if tasks else envelopes
    if events:
        await publisher.publish(events)
    if tasks:
        await publisher.send(tasks)


async def _call_handler(delivery: Delivery) -> None:
    await delivery.subscription.handler(delivery.message, delivery.context)


def _matcher(where: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], bool] | None:
    if where is None:
        return None
    from bus.routing import compile_event_pattern

    return compile_event_pattern(dict(where)).match
