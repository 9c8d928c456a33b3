"""`LambdaApp`: one domain's function, built once at init and called for every invocation.

It owns one event loop for the container's life, so warm invocations reuse the loop and
the AWS clients opened on it; it tells the event's source from its shape and hands it to
the one path for that source. SQS's path is loaded with the function; the others (HTTP, SNS,
EventBridge, DynamoDB Streams, the scheduled outbox sweep) on their first event, so a
function pays only for what it is sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any

from adapters.aws.dead_letters import DeadLetters, SqsDeadLetters
from adapters.lambda_.sources import event_source
from adapters.lambda_.sqs import handle_sqs_event, visibility_extender
from bus import Context, Domain
from bus.assembly import Services, assemble
from bus.clock import Clock, SystemClock
from bus.dispatch import Observer, Publisher
from bus.ids import IdGenerator
from bus.middleware import IdempotencyStore
from bus.observability import flush_log_lines, invocation_keys

if TYPE_CHECKING:
    from adapters.lambda_.streams import Relay
    from bus.access import Authenticator, TokenPolicy
    from bus.client import Clients
    from bus.emf import EmfWriter
    from bus.http import HttpRouter
    from bus.mail import MailProvider
    from bus.storage.table import Table
    from bus.tracing import Tracing
    from bus.websockets import Connections, WebSocketSessions

_log = logging.getLogger("tctf.lambda")


class LambdaApp:
    """A domain's dispatcher, API router and outbox relay behind Lambda's handler signature."""

    def __init__(
        self,
        domain: Domain,
        publisher: Publisher,
        *,
        dead_letters: DeadLetters | None = None,
        dead_letter_queue: str | None = None,
        outbox_dead_letter_queue: str | None = None,
        safety_margin_ms: int = 2000,
        outbox_sweep_age_s: float = 900.0,
        publish_budget: Callable[[float], None] | None = None,
        relay: Relay | None = None,
        table: Table | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        idempotency_store: IdempotencyStore | None = None,
        observers: Sequence[Observer] = (),
        tracer_provider: Any | None = None,
        metrics: EmfWriter | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        resources: AsyncExitStack | None = None,
        clients: Clients | None = None,
        connections: Connections | None = None,
        authenticator: Authenticator | None = None,
        mail_provider: MailProvider | None = None,
        token_policy: TokenPolicy | None = None,
    ) -> None:
        self.domain = domain
        #: Where handlers post to the domain's WebSocket connections (`ctx.connections`).
        self.connections = connections
        #: Where a domain declaring `Mail` sends e-mail (`ctx.mail_provider`: SES).
        self.mail_provider = mail_provider
        #: What the app's tokens say (`ctx.token_policy`): the issuer and audience its API's
        #: JWT authorizer checks; None: a handler asking for it fails.
        self.token_policy = token_policy
        #: Verifies the token of a WebSocket's `$connect`; None: every connection is refused.
        self.authenticator = authenticator
        #: How handlers and routes reach other domains' APIs (`ctx.client`); None: they
        #: cannot, and a route of this domain only reaches its own.
        self.clients = clients
        self.publisher = publisher
        self.dead_letters = dead_letters
        self.dead_letter_queue = dead_letter_queue
        #: Where the table's stream parks outbox items that can never be published;
        #: `dead_letter_queue` when not given.
        self.outbox_dead_letter_queue = outbox_dead_letter_queue or dead_letter_queue
        self.safety_margin_ms = safety_margin_ms
        #: A scheduled sweep publishes the outbox events committed at least this long ago,
        #: which the table's stream should have relayed long before.
        self.outbox_sweep_age_s = outbox_sweep_age_s
        #: Told, at the start of each invocation, the seconds left before the safety margin,
        #: so that publishing stops retrying before the function times out.
        self.publish_budget = publish_budget
        self.clock = clock or SystemClock()
        self.ids = ids or IdGenerator()
        #: The domain's own table (a domain that keeps state): handlers' `ctx.table`, the
        #: idempotency records unless `idempotency_store` says otherwise, and where relayed
        #: outbox items are deleted from.
        self.table = table
        services = Services(
            publisher,
            clock=self.clock,
            ids=self.ids,
            observers=observers,
            tracer_provider=tracer_provider,
            handler_metrics=metrics is not None,
        )
        #: Where the domain's metrics go as EMF at the end of every invocation (stdout, the
        #: function's log); None: they are counted and not written.
        self.metrics = metrics
        self._cold_start = True
        self.dispatcher = assemble(
            domain, services, table=table, idempotency_store=idempotency_store
        )
        #: Spans of HTTP requests and handler calls, flushed before each invocation returns.
        self.tracing: Tracing | None = None
        if tracer_provider is not None:
            from bus.tracing import Tracing

            self.tracing = Tracing(tracer_provider)
        self._router: HttpRouter | None = None
        self._websockets: WebSocketSessions | None = None
        self._relay = relay
        self._loop = loop or asyncio.new_event_loop()
        self._resources = resources or AsyncExitStack()

    @property
    def router(self) -> HttpRouter:
        """The domain's HTTP routes, built on the first HTTP event."""
        if self._router is None:
            from bus.http import HttpRouter

            self._router = HttpRouter(
                [self.domain],
                self.publisher,
                self._context,
                ids=self.ids,
                clients=self.clients,
                tracing=self.tracing,
            )
        return self._router

    @property
    def websockets(self) -> WebSocketSessions:
        """The domain's WebSocket route, built on the first WebSocket event."""
        if self._websockets is None:
            from bus.websockets import WebSocketSessions

            self._websockets = WebSocketSessions([self.domain], self._context, self.authenticator)
        return self._websockets

    @property
    def relay(self) -> Relay:
        """What a new outbox item is handed to: by default its envelope is published, then
        the item deleted from the domain's table (kept when the function has no table)."""
        if self._relay is None:
            from adapters.lambda_.streams import outbox_relay

            delete = self.table.delete if self.table is not None else None
            self._relay = outbox_relay(self.publisher, delete)
        return self._relay

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any] | None:
        """Lambda's handler signature: run the invocation on the container's event loop,
        its handlers given the function's clients of other domains.

        Its spans are exported before it returns: Lambda may freeze the container then."""
        try:
            if (
                self.clients is None
                and self.connections is None
                and self.mail_provider is None
                and self.token_policy is None
            ):  # none to give: bus.client stays off the cold start
                return self._loop.run_until_complete(self.handle(event, context))
            invocation = contextvars.copy_context()
            if self.clients is not None:
                from bus.client import current_clients

                invocation.run(current_clients.set, self.clients)
            if self.connections is not None:
                from bus.websockets import current_connections

                invocation.run(current_connections.set, self.connections)
            if self.mail_provider is not None:
                from bus.mail import current_mail_provider

                invocation.run(current_mail_provider.set, self.mail_provider)
            if self.token_policy is not None:
                from bus.access import current_token_policy

                invocation.run(current_token_policy.set, self.token_policy)
            return invocation.run(self._loop.run_until_complete, self.handle(event, context))
        finally:
            if self.tracing is not None:
                self.tracing.flush()

    async def handle(self, event: Any, context: Any = None) -> dict[str, Any] | None:
        """Answer one invocation in the shape its source expects; its log lines carry the
        invocation's keys, and its metrics are written before it returns."""
        invocation_keys.set(self._invocation_keys(context))
        self._cold_start = False
        try:
            return await self._traced(event, context)
        finally:
            if self.metrics is not None:
                self.metrics.flush(self.dispatcher.metrics)
            flush_log_lines()

    def _invocation_keys(self, context: Any) -> dict[str, Any]:
        """Powertools' Lambda keys: this container's first invocation, the function, the
        request and, where Lambda traces it, the X-Ray trace."""
        keys: dict[str, Any] = {
            "cold_start": self._cold_start,
            "function_name": getattr(context, "function_name", None)
            or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "function_request_id": getattr(context, "aws_request_id", None),
        }
        arn = getattr(context, "invoked_function_arn", None)
        if arn:
            keys["function_arn"] = arn
        trace = _xray_trace_id(os.environ.get("_X_AMZN_TRACE_ID"))
        if trace:
            keys["xray_trace_id"] = trace
        return keys

    async def _traced(self, event: Any, context: Any) -> dict[str, Any] | None:
        source = event_source(event)
        if self.tracing is None or source == "http":  # a request opens its own server span
            return await self._handle(source, event, context)
        with self.tracing.span(
            f"{self.domain.name} {source} invocation",
            {
                "faas.trigger": "pubsub" if source in ("sqs", "sns", "eventbridge") else "other",
                "faas.invocation_id": getattr(context, "aws_request_id", None),
                "tctf.domain": self.domain.name,
                "tctf.records": len(_records(event)),
            },
            traceparents=record_traceparents(event),
            kind="CONSUMER" if source in ("sqs", "sns", "eventbridge") else "INTERNAL",
        ):
            return await self._handle(source, event, context)

    async def _handle(self, source: str, event: Any, context: Any) -> dict[str, Any] | None:
        deadline = _deadline(context, self.safety_margin_ms)
        remaining: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
        if self.publish_budget is not None and remaining is not None:
            self.publish_budget(max(0.0, (remaining() - self.safety_margin_ms) / 1000))
        if source == "sqs":
            extender = None
            if isinstance(self.dead_letters, SqsDeadLetters):
                extender = partial(visibility_extender, self.dead_letters.client, context)
            return await handle_sqs_event(
                self.dispatcher,
                event,
                deadline=deadline,
                dead_letters=self.dead_letters,
                extender=extender,
            )
        if source == "schedule":
            await self.sweep_outbox(should_stop=deadline)
            return None
        if source == "http":
            from adapters.lambda_.http import handle_http_event

            return await handle_http_event(self.router, event)
        if source == "websocket":
            from adapters.lambda_.websocket import handle_websocket_event

            return await handle_websocket_event(self.websockets, event)
        if source == "dynamodb":
            from adapters.lambda_.streams import handle_stream_event

            return await handle_stream_event(
                self.relay,
                event,
                deadline=deadline,
                dead_letters=self.dead_letters,
                dead_letter_queue=self.outbox_dead_letter_queue,
                delete=self.table.delete if self.table is not None else None,
            )
        mail = self.domain.mail
        if source == "sns" and mail is not None and mail.notifications is not None:
            from adapters.lambda_.sns import from_topic, handle_notifications
            from bus.topology import mail_events_topic_suffix

            if from_topic(event, mail_events_topic_suffix(self.domain.name)):
                await handle_notifications(self.router, event, mail.notifications)
                return None
        if source == "sns":
            from adapters.lambda_.sns import handle_sns_event as handle
        else:
            from adapters.lambda_.eventbridge import handle_eventbridge_event as handle
        await handle(
            self.dispatcher,
            event,
            deadline=deadline,
            dead_letters=self.dead_letters,
            dead_letter_queue=self.dead_letter_queue,
        )
        return None

    async def sweep_outbox(self, *, should_stop: Callable[[], bool] | None = None) -> int:
        """Publish, and delete, the outbox events pending for at least `outbox_sweep_age_s`,
        which the table's stream has not relayed (a record that failed until it aged out of
        the stream). How many were swept; 0 for a domain without a table."""
        if self.table is None:
            _log.debug("outbox sweep: domain %s keeps no table, nothing to do", self.domain.name)
            return 0
        from adapters.lambda_.sweep import sweep_outbox

        return await sweep_outbox(
            self.table,
            self.publisher,
            older_than=self.outbox_sweep_age_s,
            now=self.clock.now,
            should_stop=should_stop,
            dead_letters=self.dead_letters,
            dead_letter_queue=self.outbox_dead_letter_queue,
        )

    def close(self) -> None:
        """Close the AWS clients and the loop (Lambda never does; tests and local runs do)."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._resources.aclose())
            self._loop.close()

    def _context(self, source: str, correlation_id: str | None) -> Context:
        return Context(
            source,
            clock=self.clock,
            ids=self.ids,
            metrics=self.dispatcher.metrics,
            correlation_id=correlation_id,
            table=self.table,
            sender=self.domain,
        )


def _xray_trace_id(header: str | None) -> str | None:
    """The `Root` of Lambda's `_X_AMZN_TRACE_ID` (`Root=1-...;Parent=...;Sampled=1`)."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "Root" and value:
            return value
    return None


def _deadline(context: Any, margin_ms: int) -> Callable[[], bool] | None:
    """True once fewer than `margin_ms` remain of the invocation; None without a context."""
    remaining: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return lambda: remaining() < margin_ms


def _records(event: Any) -> list[Any]:
    records = event.get("Records") if isinstance(event, dict) else None
    return records if isinstance(records, list) else []


def record_traceparents(event: Any) -> list[str | None]:
    """The `traceparent` each record of an SQS or SNS batch carries as a message attribute, or
    an EventBridge event in its `detail` (the envelope): what an invocation's span links to,
    one link per producer span."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if isinstance(detail, dict):
        value = detail.get("traceparent")
        return [value if isinstance(value, str) else None]
    found: list[str | None] = []
    for record in _records(event):
        if not isinstance(record, dict):
            continue
        attributes = record.get("messageAttributes")  # SQS
        if isinstance(attributes, dict):
            value = attributes.get("traceparent")
            found.append(value.get("stringValue") if isinstance(value, dict) else None)
            continue
        sns = record.get("Sns")
        attributes = sns.get("MessageAttributes") if isinstance(sns, dict) else None
        if isinstance(attributes, dict):
            value = attributes.get("traceparent")
            found.append(value.get("Value") if isinstance(value, dict) else None)
    return found
