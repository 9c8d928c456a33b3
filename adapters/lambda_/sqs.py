"""SQS batches as Lambda receives them, turned into dispatcher records and partial failures.

A record body may be the envelope itself (raw SNS delivery, or a task sent straight to SQS),
an SNS notification wrapping it (raw delivery off), or an EventBridge event whose `detail`
is the envelope. All three reach the dispatcher as the same envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from adapters.lambda_.batch import Incoming, deliver
from adapters.lambda_.dead_letters import DeadLetters
from bus import Dispatcher, Record

#: The suffix the topology gives every queue's DLQ (`tctf-messaging-events-dlq`).
DLQ_SUFFIX = "-dlq"


def unwrap(body: str | bytes) -> bytes | Mapping[str, Any]:
    """The envelope inside an SQS body: parsed when a wrapper had to be opened.

    Anything unrecognised is passed on as it came, so the dispatcher reports it as malformed
    (with the reason) instead of the batch failing here.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body if isinstance(body, bytes) else body.encode()
    if isinstance(parsed, dict):
        if parsed.get("Type") == "Notification" and isinstance(parsed.get("Message"), str):
            message: str = parsed["Message"]
            return message.encode()
        if "detail-type" in parsed and isinstance(parsed.get("detail"), dict):
            detail: Mapping[str, Any] = parsed["detail"]
            return detail
        return parsed
    return body if isinstance(body, bytes) else body.encode()


def dead_letter_queue(source_arn: str | None) -> str | None:
    """The DLQ of the queue a record came from, by the topology's naming; None if unknown.

    FIFO queues are left to SQS's own redrive: a FIFO DLQ needs a message group.
    """
    if not source_arn or not source_arn.startswith("arn:") or source_arn.endswith(".fifo"):
        return None
    name = source_arn.rsplit(":", 1)[-1]
    return f"{name}{DLQ_SUFFIX}" if name else None


def incoming_from_sqs_event(event: Mapping[str, Any]) -> list[Incoming]:
    """Each SQS record of a Lambda event, keyed by `messageId`, with its DLQ."""
    incoming: list[Incoming] = []
    for r in event.get("Records", ()):
        body = r.get("body", "")
        source = r.get("eventSourceARN", "")
        record = Record(
            id=r["messageId"],
            body=unwrap(body),
            receive_count=int(r.get("attributes", {}).get("ApproximateReceiveCount", 1)),
        )
        incoming.append(Incoming(record, body, dead_letter_queue(source), source))
    return incoming


def records_from_sqs_event(event: Mapping[str, Any]) -> list[Record]:
    """Dispatcher records for each SQS record of a Lambda event, keyed by `messageId`."""
    return [i.record for i in incoming_from_sqs_event(event)]


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
) -> dict[str, Any]:
    """Dispatch one SQS batch and answer with only the records to deliver again."""
    incoming = incoming_from_sqs_event(event)
    failed = await deliver(dispatcher, incoming, deadline=deadline, dead_letters=dead_letters)
    return batch_item_failures(failed, (i.record for i in incoming))
