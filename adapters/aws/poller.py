"""The local stand-in for a Lambda SQS event source mapping.

Long-polls one queue, hands each batch to a Lambda-style handler as the exact event Lambda
would send, with a context whose remaining time runs out with the batch's visibility
timeout, deletes what the handler did not report in `batchItemFailures`, and leaves the
rest to the visibility timeout: redelivery and the move to the DLQ are SQS's own. A batch
the handler failed whole on its last allowed receive gets the "dead-lettered" line the
handler would have logged.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from adapters.aws.batches import Backoff, is_transient
from adapters.aws.bodies import open_body
from adapters.aws.session import AwsSettings
from bus.observability import log_dead_lettered
from bus.topology import QueueSpec

if TYPE_CHECKING:
    from bus.dispatch import Dispatcher

log = logging.getLogger("adapters.aws")

#: A Lambda function handling SQS batches: the event and a context in (Lambda's signature;
#: the poller passes a `BatchContext`), `{"batchItemFailures": [...]}` out.
LambdaHandler = Callable[[dict[str, Any], Any], Awaitable[Mapping[str, Any]]]

#: Builds a domain's `LambdaHandler` from its dispatcher and the SQS client its queues are
#: polled with. The poller knows no handler of its own: whoever composes the platform passes
#: one in (`adapters.lambda_.sqs.sqs_batch_handler`, or a Lambda function's entry point).
HandlerFactory = Callable[["Dispatcher", Any], LambdaHandler]


class BatchContext:
    """The part of Lambda's context a handler reads to stop in time: the batch's time left.

    A batch's time is its visibility timeout, counted from when it was received; after
    that SQS offers its records again, as a Lambda function's timeout ends an invocation.
    """

    def __init__(self, deadline: float, scope: anyio.CancelScope | None = None) -> None:
        #: When the batch's time is up, on anyio's clock.
        self.deadline = deadline
        self._scope = scope

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - anyio.current_time()) * 1000))

    def extend_deadline(self, seconds: float) -> None:
        """A record's visibility was extended to `seconds` from now: the batch has until then."""
        self.deadline = max(self.deadline, anyio.current_time() + seconds)
        if self._scope is not None:
            self._scope.deadline = self.deadline


def lambda_sqs_event(
    messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str
) -> dict[str, Any]:
    """The event Lambda passes a function for a batch received from `queue_arn`."""
    return {"Records": [lambda_sqs_record(m, queue_arn, region) for m in messages]}


def lambda_sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message in Lambda's shape: lower-camel keys, base64 binaries."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    converted["stringListValues"] = list(value.get("StringListValues", ()))
    converted["binaryListValues"] = [
        base64.b64encode(b).decode() for b in value.get("BinaryListValues", ())
    ]
    converted["dataType"] = value.get("DataType", "String")
    return converted


def failed_message_ids(response: Any, batch: Sequence[str]) -> set[str]:
    """The ids Lambda would leave on the queue for a handler's response.

    As Lambda does: a response naming an id not in the batch, or not shaped as a partial
    batch response, fails the whole batch.
    """
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return set(batch)
    items = response.get("batchItemFailures")
    if items is None:  # absent or null: every record succeeded
        return set()
    if not isinstance(items, list):
        return set(batch)
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(ident, str) or ident not in batch:
            return set(batch)
        failed.add(ident)
    return failed


class SqsPoller:
    """`concurrency` long-poll loops on one queue, each handling one batch at a time."""

    def __init__(
        self,
        sqs: Any,
        spec: QueueSpec,
        queue_url: str,
        queue_arn: str,
        handler: LambdaHandler,
        settings: AwsSettings,
    ) -> None:
        self.spec = spec
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._sqs = sqs
        self._handler = handler
        self._settings = settings
        self._stopping = False
        self._receiving: set[anyio.CancelScope] = set()
        #: Batches received and not yet finished (handled and deleted).
        self.in_flight = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled or stopped; a batch in hand is finished before returning."""
        async with anyio.create_task_group() as group:
            for _ in range(self.spec.concurrency):
                group.start_soon(self._loop)
            task_status.started()

    def stop(self) -> None:
        """Stop receiving; batches already received are handled and deleted first."""
        self._stopping = True
        for scope in self._receiving:
            scope.cancel()

    async def _loop(self) -> None:
        backoff: Backoff | None = None
        while not self._stopping:
            try:
                messages = await self._receive()
            except Exception as error:
                if not is_transient(error):
                    raise
                backoff = backoff or Backoff(self._settings)
                log.warning("receive from %s failed: %s; retrying", self.spec.name, error)
                if not await backoff.wait():
                    backoff = Backoff(self._settings)  # keep trying: a poller outlives outages
                continue
            backoff = None
            if messages:
                await self._handle(messages)

    async def _receive(self) -> list[dict[str, Any]]:
        with anyio.CancelScope() as scope:
            self._receiving.add(scope)
            try:
                response = await self._sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.spec.batch_size,
                    WaitTimeSeconds=self._settings.wait_time_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            finally:
                self._receiving.discard(scope)
            messages: list[dict[str, Any]] = response.get("Messages", [])
            return messages
        return []  # stopped while waiting

    async def _handle(self, messages: list[dict[str, Any]]) -> None:
        """Run the handler and delete the successes, shielded from shutdown.

        The handler is told the batch's time left (`BatchContext`) so it stops taking records
        in time, and is cut off at the visibility timeout, when SQS has offered the batch
        again (the whole batch then fails, as a Lambda function timing out does). The
        successes it reports are deleted even when that ends a little past the timeout.
        """
        self.in_flight += 1
        limit = max(math.ceil(self.spec.visibility_timeout), 1)
        deadline = anyio.current_time() + limit
        try:
            with anyio.CancelScope(shield=True):
                event = lambda_sqs_event(messages, self.queue_arn, self._settings.region)
                ids = [m["MessageId"] for m in messages]
                response: Any = None
                with anyio.CancelScope(deadline=deadline) as handling:
                    context = BatchContext(deadline, handling)
                    try:
                        response = await self._handler(event, context)
                    except Exception as error:
                        log.exception("handler of %s failed the whole batch", self.spec.name)
                        self._log_last_receives(messages, f"{type(error).__name__}: {error}")
                        return
                if handling.cancelled_caught:
                    log.warning(
                        "handler of %s outlasted the %ss visibility timeout: the whole batch "
                        "is delivered again",
                        self.spec.name,
                        limit,
                    )
                    self._log_last_receives(
                        messages, f"the handler outlasted the {limit}s visibility timeout"
                    )
                    return
                failed = failed_message_ids(response, ids)
                done = [m for m in messages if m["MessageId"] not in failed]
                if done:
                    await self._delete(done, context.deadline)
        finally:
            self.in_flight -= 1

    def _log_last_receives(self, messages: list[dict[str, Any]], error: str) -> None:
        """The dead-lettered line for each message of a batch failed whole on its last allowed
        receive: SQS's redrive moves it on the next one, saying nothing, and the handler
        that would have said so did not finish."""
        limit = self.spec.max_receive_count
        for message in messages:
            count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            if count < limit:
                continue
            body, routed = open_body(message.get("Body", ""))
            attribute = message.get("MessageAttributes", {}).get("type", {})
            log_dead_lettered(
                log,
                service=self.spec.domain,
                queue=self.spec.name,
                dlq=self.spec.dlq,
                message_id=message["MessageId"],
                body=body,
                type_attribute=routed or attribute.get("StringValue"),
                reason=f"received {count} times without success (max_receive_count {limit}); "
                f"last error: {error}",
                receive_count=count,
            )

    async def _delete(self, messages: list[dict[str, Any]], deadline: float) -> None:
        """Delete the batch's successes: tried once whatever the time, retried through
        transient errors only until `deadline`, when SQS has offered them again anyway."""
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        backoff = Backoff(self._settings)
        while True:
            try:
                response = await self._sqs.delete_message_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except Exception as error:
                if is_transient(error) and anyio.current_time() < deadline:
                    log.warning("delete from %s failed: %s; retrying", self.spec.name, error)
                    if await backoff.wait():
                        continue
                # Not deleted: the records come back after the visibility timeout (and are
                # skipped as duplicates by the idempotency middleware).
                log.warning("delete from %s failed: %s", self.spec.name, error)
                return
            for failure in response.get("Failed", ()):
                # A stale receipt: the message was redelivered meanwhile and will come back.
                log.warning("delete from %s refused: %s", self.spec.name, failure)
            return
