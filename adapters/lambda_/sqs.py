"""SQS batches as Lambda receives them, turned into dispatcher records and partial failures.

A record body may be the envelope itself (raw SNS delivery, or a task sent straight to SQS),
an SNS notification wrapping it (raw delivery off), or an EventBridge event whose `detail`
is the envelope. All three reach the dispatcher as the same envelope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bus import BatchResult, Dispatcher, Record


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


def records_from_sqs_event(event: Mapping[str, Any]) -> list[Record]:
    """Dispatcher records for each SQS record of a Lambda event, keyed by `messageId`."""
    return [
        Record(
            id=r["messageId"],
            body=unwrap(r.get("body", "")),
            receive_count=int(r.get("attributes", {}).get("ApproximateReceiveCount", 1)),
        )
        for r in event.get("Records", ())
    ]


def batch_item_failures(result: BatchResult, order: Sequence[Record]) -> dict[str, Any]:
    """Lambda's partial batch response for the records the dispatcher did not complete."""
    failed = set(result.failed) | set(result.parked)
    return {"batchItemFailures": [{"itemIdentifier": r.id} for r in order if r.id in failed]}


async def handle_sqs_event(dispatcher: Dispatcher, event: Mapping[str, Any]) -> dict[str, Any]:
    """Dispatch one SQS batch and answer with only the failed records."""
    records = records_from_sqs_event(event)
    result = await dispatcher.dispatch(records)
    return batch_item_failures(result, records)
