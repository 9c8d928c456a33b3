"""What a handler gets: publishing, task sending, correlation, logging, metrics and the clock.

Events published and tasks sent through a `Context` are held until the handler returns
successfully; a handler that raises sends nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bus.clock import Clock
from bus.envelope import Envelope, check_message_size
from bus.errors import ConfigurationError
from bus.ids import IdGenerator
from bus.limits import SNS
from bus.messages import Event, Message, Task

if TYPE_CHECKING:  # storage loads only for domains that keep state (Lambda cold start)
    from bus.storage.conditions import Condition
    from bus.storage.table import Table
    from bus.storage.unit_of_work import UnitOfWork

_time_cache: dict[int, str] = {}


def timestamp(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds; the second's prefix is cached (called per publish)."""
    second = int(epoch)
    prefix = _time_cache.get(second)
    if prefix is None:
        if len(_time_cache) > 64:
            _time_cache.clear()
        prefix = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _time_cache[second] = prefix
    return f"{prefix}.{int((epoch - second) * 1000):03d}Z"


class Metrics:
    """Counters a handler adds to; the platform flushes them (e.g. as CloudWatch EMF)."""

    def __init__(self) -> None:
        self.values: defaultdict[str, float] = defaultdict(float)

    def add(self, name: str, value: float = 1) -> None:
        self.values[name] += value


class ContextLog(logging.LoggerAdapter[logging.Logger]):
    """A logger that stamps every line with the domain and the correlation id."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


class Context:
    """Per-delivery services for a handler.

    `correlation_id` and `causation_id` come from the envelope being handled; events
    published here carry the same correlation id and this envelope's id as their causation.
    """

    __slots__ = (
        "_done_record",
        "_handler",
        "_ids",
        "_log",
        "_on_commit",
        "_staged",
        "_table",
        "_units",
        "causation_id",
        "clock",
        "correlation_id",
        "domain",
        "envelope",
        "metrics",
        "outbox",
        "traceparent",
    )

    def __init__(
        self,
        domain: str,
        *,
        clock: Clock,
        ids: IdGenerator,
        metrics: Metrics,
        envelope: Envelope | None = None,
        correlation_id: str | None = None,
        handler: str | None = None,
        done_record: Callable[[], Mapping[str, Any]] | None = None,
        table: Table | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.domain = domain
        self._handler = handler
        self._done_record = done_record
        self._units = 0
        self._staged = 0
        self._table = table
        self._on_commit = on_commit
        self.clock = clock
        self.metrics = metrics
        self.envelope = envelope
        self._ids = ids
        self._log: ContextLog | None = None
        if envelope is not None:
            self.correlation_id = envelope.correlationid
            self.causation_id: str | None = envelope.id
            self.traceparent = envelope.traceparent
        else:
            self.correlation_id = correlation_id or ids()
            self.causation_id = None
            self.traceparent = None
        #: Envelopes published or sent by the handler, flushed only when it succeeds.
        self.outbox: list[Envelope] = []

    @property
    def log(self) -> ContextLog:
        if self._log is None:
            self._log = ContextLog(
                logging.getLogger(f"tctf.{self.domain}"),
                {"service": self.domain, "correlation_id": self.correlation_id},
            )
        return self._log

    @property
    def table(self) -> Table:
        """The domain's own table (declared with `Domain(..., storage=Storage())`)."""
        if self._table is None:
            raise ConfigurationError(
                f"domain {self.domain} has no table: declare Domain({self.domain!r}, "
                "storage=Storage()) to keep state"
            )
        return self._table

    def unit_of_work(self) -> EventUnitOfWork:
        """`async with ctx.unit_of_work() as uow:` writes items and events in one transaction.

        Events published through the unit of work go to the table's outbox in the same
        transaction, and the outbox relay publishes them: never a state change without its
        events, nor an event without its state change.
        """
        from bus.storage.unit_of_work import UnitOfWork

        table = self.table
        self._units += 1
        if self._units > 1 and self._handler is not None:
            raise ConfigurationError(
                f"{self._handler} opened a second unit of work: a handler commits its effect in "
                "one, which also records the event as handled (so a retry cannot repeat it)"
            )
        writes = UnitOfWork(table, now=self.clock.now)
        if self._done_record is not None:
            writes.put(self._done_record())
        return EventUnitOfWork(self, writes, self._on_commit)

    def new_id(self) -> str:
        """A fresh unique id (a UUID string; replayable under a seeded harness)."""
        return self._ids()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    def publish(self, event: Event, *, subject: str | None = None) -> Envelope:
        """Publish a fact; it leaves when the handler succeeds. `subject`: the aggregate id."""
        if not isinstance(event, Event):
            raise ConfigurationError(
                f"publish() takes an Event, got {type(event).__name__}"
                + ("; send tasks with ctx.send()" if isinstance(event, Task) else "")
            )
        return self._stage(event, subject)

    def send(self, task: Task) -> Envelope:
        """Send a command to the task queue of `task.domain`; it leaves on success."""
        if not isinstance(task, Task):
            raise ConfigurationError(
                f"send() takes a Task, got {type(task).__name__}"
                + ("; publish events with ctx.publish()" if isinstance(task, Event) else "")
            )
        return self._stage(task, None)

    def _stage(self, message: Message, subject: str | None) -> Envelope:
        envelope = self.envelope_for(message, subject)
        self.outbox.append(envelope)
        return envelope

    def begin_attempt(self) -> None:
        """Forget what a failed attempt staged; the next one stages with the same ids."""
        self.outbox.clear()
        self._staged = 0
        self._units = 0

    def envelope_for(self, message: Message, subject: str | None = None) -> Envelope:
        """The envelope this context gives a message: a new id, its correlation, its cause.

        In a handler the id is derived from the event handled, the handler and the message's
        place among those it staged, so a retried handler republishes the same ids and
        consumers' idempotency absorbs the repeats.
        """
        self._staged += 1
        if self.envelope is not None and self._handler is not None:
            event_id = derived_id(f"{self.envelope.id}/{self._handler}/{self._staged}")
        else:
            event_id = self._ids()
        return Envelope(
            id=event_id,
            source=self.domain,
            type=message.type,
            time=timestamp(self.clock.now()),
            dataversion=message.version,
            correlationid=self.correlation_id,
            data=message,
            causationid=self.causation_id,
            traceparent=self.traceparent,
            subject=subject,
        )


def derived_id(seed: str) -> str:
    """A UUID-shaped id that is the same for the same seed."""
    h = hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class EventUnitOfWork:
    """Item writes and published events of one handler call, committed as one transaction."""

    def __init__(
        self, context: Context, writes: UnitOfWork, on_commit: Callable[[], None] | None
    ) -> None:
        self._context = context
        self._writes = writes
        self._on_commit = on_commit

    async def __aenter__(self) -> EventUnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._writes.__aexit__(exc_type, exc, traceback)
        if exc_type is None and self._writes.events and self._on_commit is not None:
            self._on_commit()

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._writes.put(item, condition=condition)

    def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> None:
        self._writes.update(key, set=set, remove=remove, add=add, condition=condition)

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._writes.delete(key, condition=condition)

    def check(self, key: Mapping[str, Any], condition: Condition) -> None:
        self._writes.check(key, condition)

    def publish(self, event: Event, *, subject: str | None = None) -> Envelope:
        """Stage an event in the outbox; `subject` (the aggregate id) orders its events."""
        if not isinstance(event, Event):
            raise ConfigurationError(f"publish() takes an Event, got {type(event).__name__}")
        envelope = self._context.envelope_for(event, subject)
        body = envelope.encode()
        check_message_size(envelope, body, SNS)
        self._writes.publish(body, ordering_key=subject or envelope.id, event_id=envelope.id)
        return envelope
