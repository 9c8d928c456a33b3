"""What a handler gets: publishing, task sending, correlation, logging, metrics and the clock.

Events published and tasks sent through a `Context` are held until the handler returns
successfully; a handler that raises sends nothing. In a handler that commits a unit of work,
they leave with its commit instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bus.clock import Clock, timestamp
from bus.envelope import Envelope, adoptable_id, check_adoptable
from bus.errors import ConfigurationError
from bus.ids import IdGenerator, derived_id
from bus.messages import Event, Message, Task
from bus.metrics import Metrics
from bus.tracing import message_traceparent

if TYPE_CHECKING:  # storage loads only for domains that keep state (Lambda cold start)
    from bus.access import TokenPolicy
    from bus.client import Client
    from bus.domain import Domain
    from bus.event_unit_of_work import EventUnitOfWork
    from bus.mail import MailProvider
    from bus.middleware import HandlerBound, IdempotencyStore
    from bus.storage.table import Put, Table
    from bus.websockets import Connections

#: Keeps something held `seconds` more from now: a record's visibility, a claim's lease.
Extend = Callable[[float], Awaitable[None]]


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
        "_claim_key",
        "_claim_store",
        "_claim_token",
        "_committed",
        "_done_record",
        "_extend_visibility",
        "_handler",
        "_ids",
        "_log",
        "_on_commit",
        "_staged",
        "_table",
        "_unchecked",
        "_units",
        "bound",
        "causation_id",
        "clock",
        "correlation_id",
        "domain",
        "envelope",
        "metrics",
        "outbox",
        "sender",
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
        done_record: Callable[[str], Put] | None = None,
        table: Table | None = None,
        on_commit: Callable[[], None] | None = None,
        sender: Domain | None = None,
        extend_visibility: Extend | None = None,
    ) -> None:
        self.domain = domain
        #: The domain whose declared tasks alone `send` accepts; None outside any domain.
        self.sender = sender
        self._handler = handler
        #: The conditional write recording this handler's effect, given its claim's token.
        self._done_record = done_record
        self._claim_token: str | None = None
        self._claim_store: IdempotencyStore | None = None
        self._claim_key = ""
        self._extend_visibility = extend_visibility
        #: The handler call's time bound, if one runs: extending visibility moves it too.
        self.bound: HandlerBound | None = None
        self._committed = False
        #: Whether no envelope of this context has passed `check_adoptable` yet; a handler's
        #: context inherits its correlation and cause from an envelope a decoder adopted.
        self._unchecked = envelope is None
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
        from bus.event_unit_of_work import EventUnitOfWork
        from bus.storage.unit_of_work import UnitOfWork

        table = self.table
        self._units += 1
        if self._units > 1 and self._handler is not None:
            raise ConfigurationError(
                f"{self._handler} opened a second unit of work: a handler commits its effect in "
                "one, which also records the event as handled (so a retry cannot repeat it)"
            )
        writes = UnitOfWork(table, now=self.clock.now)
        done = None
        if self._done_record is not None and self._claim_token is not None:
            done = self._done_record(self._claim_token)
            writes.put(done.item, condition=done.condition)
        return EventUnitOfWork(self, writes, self._on_commit, records_done=done is not None)

    @property
    def committed(self) -> bool:
        """Whether this handler's unit of work has committed: running it again would repeat
        the effect, so it is never retried in place after that."""
        return self._committed

    def hold_claim(self, store: IdempotencyStore, key: str, token: str) -> None:
        """Called by the idempotency middleware: the claim this handler call runs under."""
        self._claim_store = store
        self._claim_key = key
        self._claim_token = token

    def mark_committed(self) -> None:
        self._committed = True

    def take_staged(self) -> list[Envelope]:
        """What `publish` and `send` staged so far, handed to a unit of work to commit."""
        staged = list(self.outbox)
        self.outbox.clear()
        return staged

    async def extend_visibility(self, seconds: float) -> None:
        """Keep the record being handled hidden `seconds` more from now, and this handler's
        claim on it: a handler that may outlive its queue's visibility timeout calls it (a
        heartbeat) so that no second copy starts meanwhile, and its `handler_timeout` moves
        to no sooner than `seconds` from now. `ClaimLost` if the claim was already taken
        over."""
        if self._extend_visibility is None:
            raise ConfigurationError(
                f"{self._handler or self.domain}: this delivery's visibility cannot be extended "
                "(no record is being handled, or its transport does not support it)"
            )
        await self._extend_visibility(seconds)
        store, token = self._claim_store, self._claim_token
        if store is not None and token is not None:
            await store.extend(self._claim_key, seconds, token=token)
        bound = self.bound
        if bound is not None:  # a heartbeat buys the handler the same time as the record
            bound.postpone(seconds)

    def client(self, domain: str) -> Client:
        """A typed client for `domain`'s HTTP routes (see `bus.client`), carrying this
        handler's correlation id; in process under `tctf run` and in tests, HTTPS on AWS."""
        from bus.client import current_clients

        clients = current_clients.get()
        if clients is None:
            raise ConfigurationError(
                f"{self.domain} cannot reach {domain}: this runtime provides no clients "
                "(the Platform and the HTTP router do; a bare Runtime does not)"
            )
        return clients(domain, self.correlation_id)

    @property
    def connections(self) -> Connections:
        """Where this domain posts to its WebSocket connections (`Domain.websocket`)."""
        from bus.websockets import current_connections

        connections = current_connections.get()
        if connections is None:
            raise ConfigurationError(
                f"{self.domain} cannot post to WebSocket connections: this runtime serves none "
                "(the Runtime and a Lambda of a domain declaring Domain.websocket do)"
            )
        return connections

    @property
    def mail_provider(self) -> MailProvider | None:
        """The platform's mail provider (SES on AWS) for a domain declaring `Mail`; None
        where the runtime sends no mail anywhere (`tctf run`, tests)."""
        from bus.mail import current_mail_provider

        return current_mail_provider.get()

    @property
    def token_policy(self) -> TokenPolicy:
        """The issuer and audience that the gateway of the app this runtime serves checks,
        whatever the app's name: what a domain signing tokens puts in them."""
        from bus.access import current_token_policy

        policy = current_token_policy.get()
        if policy is None:
            raise ConfigurationError(
                f"{self.domain} asked for the token policy outside a running runtime: run it "
                "in Runtime.running() (the Platform, the test harness) or a Lambda's boot"
            )
        return policy

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
        if self.sender is not None:
            self.sender.check_send(task)
        return self._stage(task, None)

    def _stage(self, message: Message, subject: str | None) -> Envelope:
        if self._committed and self._handler is not None:
            raise ConfigurationError(
                f"{self._handler} published or sent {message.type} after its unit of work "
                "committed: stage it in the unit of work (uow.publish, uow.send) so that it "
                "leaves with the commit"
            )
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
        traceparent = message_traceparent(
            message_id=event_id,
            message_type=message.type,
            operation="send" if isinstance(message, Task) else "publish",
            source=self.domain,
            correlation_id=self.correlation_id,
            inherited=self.traceparent,
        )
        envelope = Envelope(  # positional: keywords cost a named tuple a third more
            event_id,
            self.domain,
            message.type,
            timestamp(self.clock.now()),
            message.version,
            self.correlation_id,
            message,
            self.causation_id,
            traceparent,
            subject,
        )
        # Refused here, before any commit, not parked by the relay after it. What is the same
        # for every message of this context (correlation, cause, source) and how its ids,
        # times and trace contexts are made is checked with its first, unless a delivered
        # envelope's decoding already did; a subject, each time.
        if self._unchecked or (subject is not None and not adoptable_id(subject)):
            check_adoptable(envelope)
            self._unchecked = False
        return envelope
