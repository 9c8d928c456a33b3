"""Outbox items as their table holds them, and as their outbox DLQ holds them once parked:
the item's image as JSON, its bytes in base64, read back to the envelope it carries.

The stream relay, the outbox sweep and the in-process relay of `tctf run --aws`
(`outbox_parking`) write these letters; `tctf dlq` and `QueueTransport.redrive_outbox` read
them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from adapters.aws.dead_letters import DeadLetters, Letter
from bus.envelope import Envelope
from bus.errors import MalformedEnvelope, PermanentError, TransientError

if TYPE_CHECKING:  # storage stays off the transports' import path (a cold start)
    from bus.storage.outbox import Park

# The outbox layout of `bus.storage.outbox` (written by `UnitOfWork`): one item per event,
# PK "OUTBOX#<ordering key>", SK "EVENT#<sequence>", the encoded envelope in `body`.
OUTBOX_PARTITION_PREFIX = "OUTBOX#"
OUTBOX_EVENT_PREFIX = "EVENT#"
OUTBOX_BODY = "body"


def outbox_envelope(item: Mapping[str, Any]) -> Envelope | None:
    """The envelope of an outbox event item, or None when the item is none.

    Raises `PermanentError` (`MalformedEnvelope`) for an outbox item that cannot be read.
    """
    partition, sort = str(item.get("PK", "")), str(item.get("SK", ""))
    if not (partition.startswith(OUTBOX_PARTITION_PREFIX) and sort.startswith(OUTBOX_EVENT_PREFIX)):
        return None
    body = item.get(OUTBOX_BODY)
    if not isinstance(body, bytes | str):
        raise PermanentError(f"outbox item {partition} {sort} has no encoded envelope in 'body'")
    return Envelope.decode(body)


def outbox_letter_body(image: Mapping[str, Any] | None) -> str:
    """The body of a parked outbox item's letter: its image as JSON, bytes in base64."""
    return orjson.dumps(image, default=_jsonable).decode()


def parked_outbox_envelope(letter: str | bytes) -> Envelope:
    """The envelope of a parked outbox item's letter (`outbox_letter_body`), its `body`
    base64 when the item held bytes, as `UnitOfWork` writes.

    Raises `PermanentError` (`MalformedEnvelope`) for a letter that is no outbox item or
    whose envelope cannot be read: the error the stream relay parked it for, met again.
    """
    try:
        item = orjson.loads(letter)
    except orjson.JSONDecodeError as error:
        raise MalformedEnvelope(f"dead letter is not JSON: {error}") from None
    if not isinstance(item, dict):
        raise MalformedEnvelope(f"dead letter is JSON {type(item).__name__}, not an outbox item")
    body = item.get(OUTBOX_BODY)
    if isinstance(body, str):
        item[OUTBOX_BODY] = _unbase64(body)
    envelope = outbox_envelope(item)
    if envelope is None:
        raise MalformedEnvelope(
            f"dead letter is not an outbox event item (PK {item.get('PK')!r}, "
            f"SK {item.get('SK')!r})"
        )
    return envelope


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _unbase64(body: str) -> bytes | str:
    """Bytes `_jsonable` wrote as base64; a body the item held as text is JSON, which is
    never valid base64 (it has braces and quotes), and stays as it is."""
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        return body


def outbox_parking(dead_letters: DeadLetters, queues: Mapping[str, str]) -> Callable[[str], Park]:
    """Where each domain's in-process relay (`tctf run --aws`) parks an outbox item it can
    never publish: the domain's outbox DLQ (`queues`, from `Topology.outbox_dlqs`), as the
    stream relay in Lambda does. A DLQ that refuses the letter keeps the item pending."""

    def for_domain(domain: str) -> Park:
        queue = queues[domain]

        async def park(item: dict[str, Any], reason: str) -> None:
            record_id = str(item.get("event_id") or item.get("SK", ""))
            letter = Letter(record_id, queue, outbox_letter_body(item), reason, str(item["PK"]))
            if record_id not in await dead_letters.send([letter]):
                raise TransientError(f"outbox DLQ {queue} refused {record_id}; kept pending")

        return park

    return for_domain
