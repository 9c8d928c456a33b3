"""DynamoDB Streams records: new outbox items are relayed to the publisher, in stream order.

A unit of work writes items and outgoing envelopes (outbox items) in one transaction; the
stream hands each new outbox item here and its envelope is published. Other items and other
changes are not ours to relay. On failure, Lambda resumes the shard from the first
`SequenceNumber` reported, so processing stops there and nothing after it is skipped.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.aws.batches import never_publishable
from adapters.aws.dead_letters import DeadLetters, Letter
from adapters.aws.outbox_letters import outbox_envelope, outbox_letter_body
from adapters.lambda_.errors import UnreadableStreamRecord
from bus.dispatch import DEADLINE_REASON, Publisher
from bus.storage.outbox import OUTBOX_TASK_DOMAIN_ATTRIBUTE, addressed_task

_log = logging.getLogger("tctf.lambda")


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One change of one item, with its images as plain Python values."""

    sequence_number: str
    #: INSERT, MODIFY or REMOVE.
    event_name: str
    keys: dict[str, Any]
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    #: The stream ARN the record came from.
    source: str = ""


Relay = Callable[[StreamRecord], Awaitable[None]]


def from_attribute_value(value: Mapping[str, Any]) -> Any:
    """A DynamoDB JSON attribute value (`{"S": "x"}`) as a Python value.

    Numbers become `int` when integral, else `Decimal` (as the storage port reads them);
    binaries are base64 in the stream and become `bytes`.
    """
    if len(value) != 1:
        raise UnreadableStreamRecord(
            f"a DynamoDB attribute value has exactly one type, not {sorted(value)!r}"
        )
    ((kind, raw),) = value.items()
    if kind == "S" or kind == "BOOL":
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "B":
        return base64.b64decode(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return image_to_item(raw)
    if kind == "L":
        return [from_attribute_value(v) for v in raw]
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_number(v) for v in raw}
    if kind == "BS":
        return {base64.b64decode(v) for v in raw}
    raise UnreadableStreamRecord(f"unknown DynamoDB attribute type {kind!r} in {value!r}")


def image_to_item(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: from_attribute_value(value) for name, value in image.items()}


def stream_records(event: Mapping[str, Any]) -> list[StreamRecord]:
    """Each DynamoDB Streams record of a Lambda event."""
    records: list[StreamRecord] = []
    for r in event.get("Records", ()):
        change = r.get("dynamodb", {})
        new, old = change.get("NewImage"), change.get("OldImage")
        records.append(
            StreamRecord(
                sequence_number=str(change.get("SequenceNumber", "")),
                event_name=str(r.get("eventName", "")),
                keys=image_to_item(change.get("Keys", {})),
                new_image=image_to_item(new) if new is not None else None,
                old_image=image_to_item(old) if old is not None else None,
                source=str(r.get("eventSourceARN", "")),
            )
        )
    return records


Delete = Callable[[dict[str, Any]], Awaitable[None]]


def outbox_relay(publisher: Publisher, delete: Delete | None = None) -> Relay:
    """The relay hook: publish the envelope of each newly inserted outbox item, or send it
    to its domain's task queue when the item holds a task.

    `delete(key)` removes the item once published, as `OutboxRelay` does after its own
    pass; without it the item stays for `OutboxRelay` (or a TTL) to clear, and consumers
    deduplicate the second publish by event id.
    """

    async def relay(record: StreamRecord) -> None:
        if record.event_name != "INSERT" or record.new_image is None:
            return
        envelope = outbox_envelope(record.new_image)
        if envelope is None:
            return
        task_domain = record.new_image.get(OUTBOX_TASK_DOMAIN_ATTRIBUTE)
        if task_domain is None:
            await publisher.publish([envelope])
        else:
            await publisher.send([addressed_task(envelope, str(task_domain))])
        if delete is not None:
            await delete(record.keys)

    return relay


async def handle_stream_event(
    relay: Relay,
    event: Mapping[str, Any],
    *,
    deadline: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
    dead_letter_queue: str | None = None,
    delete: Delete | None = None,
) -> dict[str, Any]:
    """Relay the records in order; report the first one to retry by its `SequenceNumber`.

    `delete(key)` removes an outbox item once it is parked, as the relay removes one once it
    is published: left in the table, the outbox sweep would find it and try it again."""
    for record in stream_records(event):
        reason = await relay_record(
            relay, record, deadline, dead_letters, dead_letter_queue, delete=delete
        )
        if reason is not None:
            _log.warning("stream record %s retried: %s", record.sequence_number, reason)
            return {"batchItemFailures": [{"itemIdentifier": record.sequence_number}]}
    return {"batchItemFailures": []}


async def relay_record(
    relay: Relay,
    record: StreamRecord,
    deadline: Callable[[], bool] | None,
    dead_letters: DeadLetters | None,
    dead_letter_queue: str | None,
    *,
    delete: Delete | None = None,
) -> str | None:
    """None when the record is done (relayed, or parked in `dead_letter_queue` because it can
    never be published, then deleted with `delete` if given); otherwise why it must be
    delivered again."""
    if deadline is not None and deadline():
        return DEADLINE_REASON
    try:
        await relay(record)
    except Exception as error:
        if not never_publishable(error):
            return f"{type(error).__name__}: {error}"
        reason = await _park(record, str(error), dead_letters, dead_letter_queue)
        if reason is None and delete is not None:
            try:
                await delete(record.keys)
            except Exception as failure:  # parked: retried, it is parked again, then deleted
                return f"parked, but not deleted from the table: {failure}"
        return reason
    return None


async def _park(
    record: StreamRecord,
    reason: str,
    dead_letters: DeadLetters | None,
    dead_letter_queue: str | None,
) -> str | None:
    if dead_letters is None or dead_letter_queue is None:
        return f"parked, no dead-letter queue configured: {reason}"
    body = outbox_letter_body(record.new_image)
    letter = Letter(record.sequence_number, dead_letter_queue, body, reason, record.source)
    if record.sequence_number in await dead_letters.send([letter]):
        _log.error("outbox record %s dead-lettered: %s", record.sequence_number, reason)
        return None
    return f"parked, dead-letter queue refused it: {reason}"


def _number(raw: str) -> int | Decimal:
    number = Decimal(raw)
    return int(number) if number == number.to_integral_value() else number
