"""The SQS side both AWS transports share: clients and resources, task queues, the pollers
that serve domains, `settle()`, and the DLQ operations (`adapters.aws.dlq`).

`QueueTransport` owns the clients and the resources; `SnsSqsTransport` and
`EventBridgeTransport` add only how events are published.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from adapters.aws.batches import EntryFailure, is_transient, put_in_batches, retrying
from adapters.aws.dlq import OutboxRedrive, move_back, peek, publish_parked
from adapters.aws.entries import entry_size, message_attributes
from adapters.aws.errors import NotProvisioned, NotSettled
from adapters.aws.session import AwsClients, AwsSettings
from bus.dispatch import Dispatcher
from bus.envelope import Envelope, check_message_size
from bus.errors import ConfigurationError
from bus.limits import SQS, ServiceLimits
from bus.topology import Purpose, Topology
from bus.transport import TASK_STATUS_IGNORED, DeadLetter

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from adapters.aws.poller import HandlerFactory, LambdaHandler, SqsPoller
    from adapters.aws.provision import Kind, Resources

T = TypeVar("T")

#: The counts that must all read zero for a queue to be empty.
_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


#: Connections of each client beyond one per poller loop (the SDK's default pool size).
SPARE_CONNECTIONS = 10


class QueueTransport:
    """SQS queues of a topology: tasks in, batches out through pollers, DLQ inspection.

    `async with transport:` opens the clients and resources; without it they open on first
    use and close when `serve()` returns (or on `aclose()`).
    """

    kind: Kind
    services: tuple[str, ...] = ("sqs",)
    #: Tasks go straight to SQS.
    send_limits: ServiceLimits = SQS

    def __init__(
        self,
        topology: Topology,
        settings: AwsSettings | None = None,
        *,
        handler_for: HandlerFactory | None = None,
        account: str | None = None,
    ) -> None:
        self.topology = topology
        self.settings = settings or AwsSettings()
        #: Builds each domain's Lambda-style handler from its dispatcher and the pollers' SQS
        #: client (e.g. `adapters.lambda_.sqs.sqs_batch_handler`); None: the transport
        #: publishes, sends and reads DLQs, but cannot `serve()`.
        self._handler_for = handler_for
        #: The account holding the queues, when known (a Lambda reads it from its topic or
        #: bus ARN): the URL of a queue sent to is then formed from it and the SQS endpoint
        #: instead of looked up. None: looked up by name, once per queue.
        self.account = account
        self._clients: AwsClients | None = None
        self._resources: Resources | None = None
        self._urls: dict[str, str] = {}
        self._opening = asyncio.Lock()
        self._context_depth = 0
        self.pollers: list[SqsPoller] = []

    # -- Lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._context_depth += 1
        try:
            await self.resources()
        except BaseException:  # no `__aexit__` follows a failed enter: close here
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._context_depth -= 1
        if self._context_depth == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the clients; the next use opens them again."""
        clients, self._clients = self._clients, None
        self._resources = None
        self._urls.clear()
        if clients is not None:
            import anyio  # loaded on close, after a Lambda's init

            with anyio.CancelScope(shield=True):
                await clients.__aexit__(None, None, None)

    async def clients(self) -> AwsClients:
        """The clients of every service the transport uses, opened on first use."""
        for service in self.services:
            await self.client(service)
        assert self._clients is not None
        return self._clients

    async def client(self, service: str) -> Any:
        """One service's client, opened on first use (no call is made to open it)."""
        if self._clients is None:
            # Every poller loop holds a connection of the shared SQS client for its long
            # poll; the deletes, sends and publishes beside them need their own.
            pool = sum(spec.concurrency for spec in self.topology.queues) + SPARE_CONNECTIONS
            self._clients = AwsClients(self.settings, max_pool_connections=pool)
        return await self._clients.client(service)

    async def resources(self) -> Resources:
        """The topology's queues (and topic or bus), provisioned or looked up on first use."""
        async with self._opening:
            if self._resources is None:
                from adapters.aws.provision import discover, provision

                clients = await self.clients()
                find = provision if self.settings.provision else discover
                self._resources = await self._retrying(find, self.topology, clients, self.kind)
            return self._resources

    async def _ready(self) -> Resources | None:
        """Before a publish or send: the resources, provisioned first when the settings say so;
        None when not loaded, the targets being addressed as they are (`queue_url`)."""
        if self._resources is None and self.settings.provision:
            await self.resources()
        return self._resources

    async def queue_url(self, name: str) -> str:
        """The URL of a queue to send to, without looking up the whole topology: from the
        resources if loaded; else formed from `account`, or looked up by name, once."""
        resources = await self._ready()
        if resources is not None:
            return resources.queue_urls[name]
        url = self._urls.get(name)
        if url is None:
            sqs = await self.client("sqs")
            if self.account:
                url = f"{sqs.meta.endpoint_url.rstrip('/')}/{self.account}/{name}"
            else:
                url = await self._retrying(_look_up_queue, sqs, name)
            self._urls[name] = url
        return url

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return await retrying(self.settings, call, *args, **kwargs)

    # -- Tasks -----------------------------------------------------------------------------

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        """Put each task on its domain's task queue with SendMessageBatch, ten at a time."""
        by_queue: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for envelope in envelopes:
            queue = self.topology.task_queue_name(
                envelope.type, getattr(envelope.data, "domain", None)
            )
            by_queue.setdefault(queue, []).append(
                (f"{envelope.type} {envelope.id}", self._sqs_entry(envelope))
            )
        if not by_queue:
            return
        sqs = await self.client("sqs")
        for queue, entries in by_queue.items():
            url = await self.queue_url(queue)
            await self._send_batches(sqs, url, entries, f"SQS SendMessageBatch to {queue}")

    async def _send_batches(
        self, sqs: Any, url: str, entries: Sequence[tuple[str, dict[str, Any]]], operation: str
    ) -> None:
        """SendMessageBatch of `(id, entry)` pairs to one queue, in batches of ten entries and
        at most the batch byte limit, retrying the entries that failed (`put_in_batches`)."""

        async def call(batch: Sequence[tuple[str, dict[str, Any]]]) -> list[EntryFailure]:
            response = await sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": i, **entry} for i, entry in batch]
            )
            return _failures(response)

        await put_in_batches(
            operation,
            entries,
            call,
            self.settings,
            size=entry_size,
            max_batch_bytes=self.send_limits.max_batch_bytes,
        )

    def _sqs_entry(self, envelope: Envelope) -> dict[str, Any]:
        body = envelope.encode()
        attributes = message_attributes(envelope)
        check_message_size(envelope, body, self.send_limits)
        return {"MessageBody": body.decode(), "MessageAttributes": attributes}

    # -- Delivery --------------------------------------------------------------------------

    async def serve(
        self,
        dispatchers: Mapping[str, Dispatcher],
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> None:
        """Poll every served domain's queues until cancelled; report started once the
        resources exist and the pollers run."""
        import anyio

        from adapters.aws.poller import SqsPoller

        pollers: list[SqsPoller] = []
        try:
            resources = await self.resources()
            sqs = (await self.clients()).sqs
            pollers = [
                SqsPoller(
                    sqs,
                    spec,
                    resources.queue_urls[spec.name],
                    resources.queue_arns[spec.name],
                    self._handler(dispatchers[spec.domain], sqs),
                    self.settings,
                )
                for spec in self.topology.queues
                if spec.domain in dispatchers
            ]
            self.pollers.extend(pollers)
            async with anyio.create_task_group() as group:
                for poller in pollers:
                    await group.start(poller.run)
                task_status.started()
        finally:
            for poller in pollers:
                self.pollers.remove(poller)
            if self._context_depth == 0:
                await self.aclose()

    def _handler(self, dispatcher: Dispatcher, sqs: Any) -> LambdaHandler:
        if self._handler_for is None:
            raise ConfigurationError(
                f"{type(self).__name__} was built without handler_for, so it cannot serve "
                f"domain {dispatcher.domain.name!r}: pass handler_for (e.g. "
                "adapters.lambda_.sqs.sqs_batch_handler) to hand each batch to a handler"
            )
        return self._handler_for(dispatcher, sqs)

    def stop(self) -> None:
        """Stop every poller receiving; `serve()` returns once their batches are finished."""
        for poller in self.pollers:
            poller.stop()

    async def settle(self) -> None:
        """Wait until no batch is in flight here and every queue reads empty twice in a row.

        Reads SQS's own counts (visible, in flight, delayed) of every non-DLQ queue; a record
        failing until its max receive count is in flight until SQS moves it to the DLQ.
        """
        resources = await self.resources()
        sqs = (await self.clients()).sqs
        urls = [resources.queue_urls[spec.name] for spec in self.topology.queues]
        deadline = time.monotonic() + self.settings.settle_timeout
        quiet = 0
        while quiet < 2:
            counts = await self._counts(sqs, urls)
            busy = sum(p.in_flight for p in self.pollers)
            quiet = quiet + 1 if busy == 0 and not any(counts.values()) else 0
            if quiet >= 2:
                return
            if time.monotonic() > deadline:
                raise NotSettled(
                    f"queues still hold messages after {self.settings.settle_timeout:g}s: "
                    + ", ".join(f"{q} {n}" for q, n in counts.items() if n)
                    + (f"; {busy} batches in flight" if busy else "")
                    + ". Is a domain not being served, or a handler hanging?"
                )
            await asyncio.sleep(self.settings.settle_interval)

    async def _counts(self, sqs: Any, urls: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for url in urls:
            response = await self._retrying(
                sqs.get_queue_attributes, QueueUrl=url, AttributeNames=list(_COUNTS)
            )
            attributes = response["Attributes"]
            counts[url.rsplit("/", 1)[-1]] = sum(int(attributes.get(c, 0)) for c in _COUNTS)
        return counts

    # -- Dead letters ----------------------------------------------------------------------

    async def dead_letters(self, domain: str, purpose: Purpose = "events") -> list[DeadLetter]:
        """The DLQ's records, oldest first, left in the DLQ.

        Each is received, then made visible again at once (so `receive_count` includes such
        inspections). `reason` is the one a parked record was sent with; SQS records none
        for a record it moved after `maxReceiveCount` deliveries.
        """
        spec = self.topology.require_queue(domain, purpose)
        url = (await self.resources()).queue_urls[spec.dlq]
        return await peek((await self.clients()).sqs, url, self._dead_letter_body)

    def _dead_letter_body(self, body: str) -> bytes:
        """The envelope a dead-lettered message carries, as the producer encoded it."""
        return body.encode()

    async def outbox_dead_letters(self, domain: str) -> list[DeadLetter]:
        """The letters of a stateful domain's outbox DLQ, oldest first, left in the DLQ, as
        `dead_letters()` reads a queue's DLQ.

        Each body is the parked outbox item as the stream relay sent it (its image as JSON);
        `adapters.aws.outbox_letters.parked_outbox_envelope` reads the envelope in it.
        """
        url = await self.outbox_dlq_url(domain)
        return await peek((await self.clients()).sqs, url, str.encode)

    async def outbox_dlq_url(self, domain: str) -> str:
        """The URL of the domain's outbox DLQ; a clear error for a domain without state."""
        name = self.topology.outbox_dlqs.get(domain)
        if name is None:
            raise ConfigurationError(
                f"domain {domain!r} has no outbox DLQ: only a domain declared with "
                "storage=Storage() has an outbox"
            )
        return (await self.resources()).queue_urls[name]

    async def redrive(self, domain: str, purpose: Purpose = "events") -> int:
        """Move the DLQ's records back to their queue (`adapters.aws.dlq.move_back`): send
        each, then delete it from the DLQ; returns how many moved."""
        spec = self.topology.require_queue(domain, purpose)
        urls = (await self.resources()).queue_urls
        sqs = (await self.clients()).sqs

        async def send(url: str, entries: Sequence[tuple[str, dict[str, Any]]], op: str) -> None:
            await self._send_batches(sqs, url, entries, op)

        return await move_back(
            sqs,
            self.settings,
            send,
            dlq=(spec.dlq, urls[spec.dlq]),
            queue=(spec.name, urls[spec.name]),
        )

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish events: through SNS or EventBridge, as the subclass says."""
        raise NotImplementedError

    async def redrive_outbox(self, domain: str) -> OutboxRedrive:
        """Publish the envelope of each letter of the domain's outbox DLQ, oldest first, then
        delete the letter (`adapters.aws.dlq.publish_parked`); how many were published, and
        the letters that stayed, with why."""
        url = await self.outbox_dlq_url(domain)
        sqs = (await self.clients()).sqs
        dlq = (self.topology.outbox_dlqs[domain], url)
        return await publish_parked(sqs, self.settings, self.publish, dlq=dlq)


async def _look_up_queue(sqs: Any, name: str) -> str:
    from botocore.exceptions import ClientError

    try:
        url: str = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    except ClientError as error:
        if is_transient(error):
            raise
        raise NotProvisioned(
            f"queue {name} does not exist: run `tctf up` or deploy the stacks first"
        ) from error
    return url


def _failures(response: Mapping[str, Any]) -> list[EntryFailure]:
    return [
        EntryFailure(f["Id"], f.get("Code", ""), f.get("Message", ""), bool(f.get("SenderFault")))
        for f in response.get("Failed", ())
    ]
