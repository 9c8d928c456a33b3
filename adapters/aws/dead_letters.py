"""Dead letters on the wire: a parked record's body, its reason, source and id attributes,
and the SQS sender that puts it in its DLQ.

SQS's own redrive records no reason and only after `maxReceiveCount` deliveries; a record
that can never succeed (not JSON, not an envelope, a type the domain does not handle) is sent
to its DLQ at once instead, its body intact and the reason in a message attribute. The
Lambda adapter parks records through this; the transports' DLQ reading reads it back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: Message attribute carrying why the record was dead-lettered.
REASON_ATTRIBUTE = "tctf-reason"
#: Message attribute naming where the record came from (queue, topic or event bus ARN).
SOURCE_ATTRIBUTE = "tctf-source"
#: Message attribute with the record's id at its source (SQS message id, SNS message id).
RECORD_ATTRIBUTE = "tctf-record-id"
_MAX_REASON = 1024  # keep the attribute small: the body is what must fit the message limit

_log = logging.getLogger("tctf.lambda")


@dataclass(frozen=True, slots=True)
class Letter:
    """A record on its way to a DLQ: its body exactly as delivered and why it is going."""

    record_id: str
    #: The DLQ, by queue name or queue URL.
    queue: str
    body: str
    reason: str
    #: Where the record came from (queue, topic or event bus ARN), empty when unknown.
    source: str = ""

    def attributes(self, room: int | None = None) -> dict[str, dict[str, str]]:
        """The reason, record id and source as String message attributes, in at most `room`
        bytes (names, data types and values count, as in SQS's message size). The record id
        and source go whole or not at all, first; the reason gets what room is left, cut."""
        values = {
            REASON_ATTRIBUTE: self.reason[:_MAX_REASON],
            RECORD_ATTRIBUTE: self.record_id,
            SOURCE_ATTRIBUTE: self.source,
        }
        if room is not None:
            for name in (RECORD_ATTRIBUTE, SOURCE_ATTRIBUTE):
                cost = _attribute_size(name, values[name])
                if values[name] and cost <= room:
                    room -= cost
                else:
                    values[name] = ""
            left = room - _attribute_size(REASON_ATTRIBUTE, "")
            reason = values[REASON_ATTRIBUTE].encode()[: max(left, 0)]
            values[REASON_ATTRIBUTE] = reason.decode(errors="ignore")
        return {
            name: {"DataType": "String", "StringValue": value}
            for name, value in values.items()
            if value
        }


def _attribute_size(name: str, value: str) -> int:
    """Bytes a String message attribute counts towards SQS's message size."""
    return len(name.encode()) + len(b"String") + len(value.encode())


class DeadLetters(Protocol):
    """Where parked records go; a record not stored must be reported failed by the caller."""

    async def send(self, letters: Sequence[Letter]) -> set[str]:
        """Store the letters in their DLQs; return the record ids that were stored."""
        ...


class MemoryDeadLetters:
    """Dead letters kept in memory, by queue; queues in `unavailable` refuse every letter."""

    def __init__(self, unavailable: Sequence[str] = ()) -> None:
        self.queues: defaultdict[str, list[Letter]] = defaultdict(list)
        self.unavailable = set(unavailable)

    async def send(self, letters: Sequence[Letter]) -> set[str]:
        stored: set[str] = set()
        for letter in letters:
            if letter.queue not in self.unavailable:
                self.queues[letter.queue].append(letter)
                stored.add(letter.record_id)
        return stored


class SqsDeadLetters:
    """Dead letters sent with `SendMessageBatch` through an SQS client (aiobotocore's, or
    botocore's behind `adapters.aws.session.ThreadedClient`).

    `client_factory` returns an entered SQS client; it is called by `open()` (the entry
    point does so at init) or on first use, and the client is kept for the container's
    life. The DLQ of an SQS record sits beside its queue (same account and region, by the
    topology's naming), so its URL is formed from the record's queue ARN and the client's
    endpoint; other queues are looked up once by name.
    """

    def __init__(self, client_factory: Any) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._urls: dict[str, str] = {}

    async def open(self) -> None:
        await self.client()

    async def send(self, letters: Sequence[Letter]) -> set[str]:
        # Loaded here, not at init: only a function dead-lettering to SQS needs them.
        from adapters.aws.batches import split_into_batches
        from bus.limits import SQS

        stored: set[str] = set()
        by_queue: defaultdict[str, list[Letter]] = defaultdict(list)
        for letter in letters:
            by_queue[letter.queue].append(letter)
        for queue, queued in by_queue.items():
            try:
                url = await self._url(queue, queued[0].source)
                # SendMessageBatch takes 10 entries and 1 MiB in all, whichever comes first.
                entries = [(letter.record_id, letter) for letter in queued]
                for batch in split_into_batches(
                    entries, SQS.max_batch_entries, _size, SQS.max_batch_bytes
                ):
                    stored |= await self._send_batch(url, [letter for _, letter in batch])
            except Exception as error:  # any failure leaves the records to be retried
                _log.error(
                    "dead-letter queue %s unavailable: %s: %s", queue, type(error).__name__, error
                )
        return stored

    async def _send_batch(self, url: str, letters: Sequence[Letter]) -> set[str]:
        client = await self.client()
        entries = [{"Id": str(index), **sqs_entry(letter)} for index, letter in enumerate(letters)]
        response = await client.send_message_batch(QueueUrl=url, Entries=entries)
        for failure in response.get("Failed", ()):
            letter = letters[int(failure["Id"])]
            _log.error(
                "dead-letter of record %s refused by %s: %s",
                letter.record_id,
                url,
                failure.get("Message", failure.get("Code")),
            )
        return {letters[int(ok["Id"])].record_id for ok in response.get("Successful", ())}

    async def _url(self, queue: str, source: str = "") -> str:
        if queue.startswith(("https://", "http://")):
            return queue
        url = self._urls.get(queue)
        if url is None:
            client = await self.client()
            url = _beside(client, queue, source)
            if url is None:
                url = (await client.get_queue_url(QueueName=queue))["QueueUrl"]
            self._urls[queue] = url
        return url

    async def client(self) -> Any:
        """The SQS client, opened on first use (a function's other SQS calls share it)."""
        if self._client is None:
            self._client = await self._client_factory()
        return self._client


def sqs_entry(letter: Letter) -> dict[str, Any]:
    """The letter as a SendMessageBatch entry, without its `Id`: the body whole, and as much
    of its attributes as SQS's message limit (body and attributes together) leaves room for.
    A body that arrived through SQS always fits; one at the limit goes without a reason
    rather than not at all."""
    from bus.limits import SQS

    room = SQS.max_message_bytes - len(letter.body.encode())
    return {"MessageBody": letter.body, "MessageAttributes": letter.attributes(room)}


def _size(letter: Letter) -> int:
    """Bytes the letter counts towards a SendMessageBatch's total."""
    from adapters.aws.entries import entry_size

    return entry_size(sqs_entry(letter))


def _beside(client: Any, queue: str, source: str) -> str | None:
    """The URL of `queue` in the account of the SQS queue ARN `source`, if that queue is in
    the client's region; None otherwise (or if the client does not say where it points)."""
    parts = source.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[4]:
        return None
    meta = getattr(client, "meta", None)
    endpoint = getattr(meta, "endpoint_url", None)
    if not isinstance(endpoint, str) or parts[3] != getattr(meta, "region_name", None):
        return None
    return f"{endpoint.rstrip('/')}/{parts[4]}/{queue}"
