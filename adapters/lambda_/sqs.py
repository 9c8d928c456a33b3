"""SQS batches as Lambda receives them, turned into dispatcher records and partial failures.

A record body may be the envelope itself (raw SNS delivery, or a task sent straight to SQS),
an SNS notification wrapping it (raw delivery off), or an EventBridge event whose `detail`
is the envelope. All three reach the dispatcher as the same envelope.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from adapters.aws.bodies import open_body
from adapters.aws.dead_letters import DeadLetters, SqsDeadLetters
from adapters.lambda_.batch import Incoming, deliver
from bus.dispatch import Dispatcher, Record

if TYPE_CHECKING:
    from adapters.aws.poller import LambdaHandler
    from bus.context import Extend
    from bus.emf import EmfWriter

#: Builds, for one SQS record of the event (Lambda's shape), how to extend its visibility.
Extender = Callable[[Mapping[str, Any]], "Extend"]

#: The suffix the topology gives every queue's DLQ (`tctf-messaging-events-dlq`).
DLQ_SUFFIX = "-dlq"

#: Most of a batch's time kept for the record in hand and the delete once the handler stops
#: taking records: Lambda's default safety margin.
SAFETY_MARGIN_MS = 2000


def dead_letter_queue(source_arn: str | None) -> str | None:
    """The DLQ of the queue a record came from, by the topology's naming; None if unknown.

    FIFO queues are left to SQS's own redrive: a FIFO DLQ needs a message group.
    """
    if not source_arn or not source_arn.startswith("arn:") or source_arn.endswith(".fifo"):
        return None
    name = source_arn.rsplit(":", 1)[-1]
    return f"{name}{DLQ_SUFFIX}" if name else None


def incoming_from_sqs_event(
    event: Mapping[str, Any],
    domain: str = "",
    extender: Extender | None = None,
    max_receive_count: int | None = None,
) -> list[Incoming]:
    """Each SQS record of a Lambda event, keyed by `messageId`, with its DLQ, the type it
    was routed by, and whether it came from `domain`'s own task queue; `extender` gives each
    a way to extend its visibility. `max_receive_count` is the queues' redrive setting (the
    domain's, as the topology gives every queue of the domain)."""
    incoming: list[Incoming] = []
    for r in event.get("Records", ()):
        body = r.get("body", "")
        source = r.get("eventSourceARN", "")
        envelope, wrapper_type = open_body(body)
        record = Record(
            id=r["messageId"],
            body=envelope,
            receive_count=int(r.get("attributes", {}).get("ApproximateReceiveCount", 1)),
            purpose="tasks" if domain and is_task_queue(source, domain) else "events",
            type_attribute=_type_attribute(r) if wrapper_type is None else wrapper_type,
            extend_visibility=extender(r) if extender is not None else None,
            sent_at=_sent_at(r),
        )
        incoming.append(
            Incoming(record, body, dead_letter_queue(source), source, max_receive_count)
        )
    return incoming


def is_task_queue(source_arn: str, domain: str) -> bool:
    """Whether the queue of `source_arn` is `domain`'s task queue, named as the topology
    names it (`{app}-{domain}-tasks`, `Topology.task_queue_name`)."""
    return source_arn.startswith("arn:") and source_arn.rsplit(":", 1)[-1].endswith(
        f"-{domain}-tasks"
    )


def _sent_at(record: Mapping[str, Any]) -> float | None:
    """When SQS accepted the record (its `SentTimestamp`, epoch milliseconds), in seconds."""
    sent = record.get("attributes", {}).get("SentTimestamp")
    try:
        return int(sent) / 1000 if sent is not None else None
    except ValueError:
        return None


def _type_attribute(record: Mapping[str, Any]) -> str | None:
    """The `type` message attribute SNS raw delivery or a task send put beside the body."""
    attribute = record.get("messageAttributes", {}).get("type")
    if not isinstance(attribute, Mapping):
        return None
    value = attribute.get("stringValue")
    return value if isinstance(value, str) else ""


def records_from_sqs_event(event: Mapping[str, Any], domain: str = "") -> list[Record]:
    """Dispatcher records for each SQS record of a Lambda event, keyed by `messageId`."""
    return [i.record for i in incoming_from_sqs_event(event, domain)]


def batch_item_failures(failed: Iterable[str], order: Iterable[Record]) -> dict[str, Any]:
    """Lambda's partial batch response: the failed records' ids, in delivery order."""
    failed = set(failed)
    return {"batchItemFailures": [{"itemIdentifier": r.id} for r in order if r.id in failed]}


async def handle_sqs_event(
    dispatcher: Dispatcher,
    event: Mapping[str, Any],
    *,
    deadline: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
    extender: Extender | None = None,
) -> dict[str, Any]:
    """Dispatch one SQS batch and answer with only the records to deliver again."""
    domain = dispatcher.domain
    incoming = incoming_from_sqs_event(
        event, domain.name, extender, domain.settings.max_receive_count
    )
    failed = await deliver(dispatcher, incoming, deadline=deadline, dead_letters=dead_letters)
    return batch_item_failures(failed, (i.record for i in incoming))


def sqs_batch_handler(
    dispatcher: Dispatcher, sqs: Any, *, metrics: EmfWriter | None = None
) -> LambdaHandler:
    """A domain's Lambda handler for the pollers of `adapters.aws` (`handler_for`): the SQS
    batch adapter over its dispatcher, parking records that can never succeed in their DLQ
    at once through the pollers' SQS client, with the reason attached.

    It stops taking records when the context's remaining time falls below a quarter of what
    the batch had at the start, at most `SAFETY_MARGIN_MS`: those not started are reported
    failed and delivered again, as a Lambda function does near its timeout. A handler's
    `ctx.extend_visibility(seconds)` changes its record's visibility with
    ChangeMessageVisibility and gives the batch that much more time. With `metrics`, the
    domain's metrics are written as EMF after each batch, as a Lambda function's are after
    each invocation.
    """

    async def opened() -> Any:
        return sqs

    dead_letters = SqsDeadLetters(opened)

    async def handle(event: dict[str, Any], context: Any = None) -> Mapping[str, Any]:
        deadline: Callable[[], bool] | None = None
        remaining: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None:
            margin = min(SAFETY_MARGIN_MS, remaining() // 4)
            deadline = partial(_past, remaining, margin)
        try:
            return await handle_sqs_event(
                dispatcher,
                event,
                deadline=deadline,
                dead_letters=dead_letters,
                extender=partial(visibility_extender, opened, context),
            )
        finally:
            if metrics is not None:
                metrics.flush(dispatcher.metrics)

    return handle


def visibility_extender(
    open_sqs: Callable[[], Awaitable[Any]], context: Any, record: Mapping[str, Any]
) -> Extend:
    """What a handler's `ctx.extend_visibility` calls for `record`: ChangeMessageVisibility
    on its queue, and more time for the batch where the caller's context can give it."""

    async def extend(seconds: float) -> None:
        sqs = await open_sqs()
        name = str(record.get("eventSourceARN", "")).rsplit(":", 1)[-1]
        url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
        await sqs.change_message_visibility(
            QueueUrl=url,
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=math.ceil(seconds),
        )
        lengthen: Callable[[float], None] | None = getattr(context, "extend_deadline", None)
        if lengthen is not None:
            lengthen(seconds)

    return extend


def _past(remaining: Callable[[], int], margin: int) -> bool:
    return remaining() < margin
