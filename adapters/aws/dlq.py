"""A DLQ's records read without consuming them, and moved back: a queue's DLQ to its queue,
an outbox DLQ's letters published again.

`QueueTransport` offers these as its dead-letter operations; they need only an SQS client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.aws.batches import never_publishable, retrying
from adapters.aws.dead_letters import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE
from adapters.aws.errors import AwsTransportError
from adapters.aws.outbox_letters import parked_outbox_envelope
from adapters.aws.session import AwsSettings
from bus.envelope import Envelope
from bus.transport import DeadLetter

#: Sends `(id, entry)` SendMessageBatch entries to the queue at a URL; the string names the
#: operation in errors.
SendBatches = Callable[[str, Sequence[tuple[str, dict[str, Any]]], str], Awaitable[None]]
Publish = Callable[[Sequence[Envelope]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutboxRedrive:
    """What `QueueTransport.redrive_outbox` did."""

    #: Letters whose envelope was published, and which were deleted from the DLQ.
    published: int
    #: Letters left in the DLQ, by message id, with why each still cannot be published.
    kept: Mapping[str, str]


async def peek(sqs: Any, url: str, body: Callable[[str], bytes]) -> list[DeadLetter]:
    """The DLQ's records, oldest first, each made visible again at once, so inspecting
    consumes nothing; `body` turns a message body into the letter's."""
    messages = await _receive_all(sqs, url)
    if messages:
        await _make_visible(sqs, url, messages)
    return [
        DeadLetter(
            m["MessageId"],
            body(m["Body"]),
            int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            _attribute(m, REASON_ATTRIBUTE),
            _attribute(m, SOURCE_ATTRIBUTE),
        )
        for m in _oldest_first(messages)
    ]


async def move_back(
    sqs: Any,
    settings: AwsSettings,
    send: SendBatches,
    *,
    dlq: tuple[str, str],
    queue: tuple[str, str],
) -> int:
    """Send each record of the DLQ back to its queue, then delete it from the DLQ; returns
    how many moved. `dlq` and `queue` are each `(name, url)`.

    (SQS's StartMessageMoveTask does this server-side on AWS, but is asynchronous and not
    offered by moto; moving by hand works on both.)
    """
    (dlq_name, dlq_url), (queue_name, queue_url) = dlq, queue
    messages = await _receive_all(sqs, dlq_url)
    undeleted: list[str] = []
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [
            (
                m["MessageId"],
                {
                    "MessageBody": m["Body"],
                    "MessageAttributes": _resendable(m.get("MessageAttributes", {})),
                },
            )
            for m in chunk
        ]
        await send(queue_url, entries, f"redrive to {queue_name}")
        undeleted += await _delete(sqs, settings, dlq_url, chunk)
    if undeleted:
        raise AwsTransportError(
            f"redrive sent {len(messages)} messages back to {queue_name} but could not "
            f"delete {len(undeleted)} of them from {dlq_name}: {_listed(undeleted)}. "
            "Those are in both queues now; delete them from the DLQ rather than "
            "redriving again, or they are delivered once more"
        )
    return len(messages)


async def publish_parked(
    sqs: Any, settings: AwsSettings, publish: Publish, *, dlq: tuple[str, str]
) -> OutboxRedrive:
    """Publish the envelope of each letter of an outbox DLQ (`(name, url)`), oldest first,
    then delete the letter; how many were published, and the letters that stayed, with why.

    A letter that still cannot be published, for the reasons the stream relay parks one
    (unreadable, over the size limit, refused as the sender's fault), stays in the DLQ,
    visible again at once. Any other failure (an outage outlasting the retry deadline)
    stops the redrive and is raised, once the letters published so far are deleted.
    """
    name, url = dlq
    messages = _oldest_first(await _receive_all(sqs, url))
    published: list[dict[str, Any]] = []
    kept: dict[str, str] = {}
    try:
        for message in messages:
            try:
                await publish([parked_outbox_envelope(message["Body"])])
            except Exception as error:
                if not never_publishable(error):
                    raise
                kept[message["MessageId"]] = str(error)
            else:
                published.append(message)
    finally:
        undeleted = await _delete(sqs, settings, url, published)
        left = [m for m in messages if m not in published]
        if left:
            await _make_visible(sqs, url, left)
    if undeleted:
        raise AwsTransportError(
            f"redrive published {len(published)} letters of {name} but could not delete "
            f"{len(undeleted)} of them: {_listed(undeleted)}. Delete those from the DLQ, or "
            "the next redrive publishes them again (consumers drop the duplicate by event id)"
        )
    return OutboxRedrive(len(published), kept)


async def _delete(
    sqs: Any, settings: AwsSettings, url: str, messages: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Delete received messages, ten a call; each one not deleted, with AWS's reason."""
    undeleted: list[str] = []
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        deleted = await retrying(
            settings,
            sqs.delete_message_batch,
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ],
        )
        undeleted += [
            f"{chunk[int(f['Id'])]['MessageId']} ({f.get('Code', '')}: {f.get('Message', '')})"
            for f in deleted.get("Failed", ())
        ]
    return undeleted


async def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    """The messages a queue holds, each hidden for a while so none is read twice.

    Receives as many as `ApproximateNumberOfMessages` said were visible at the start, so a
    queue larger than can be read before the first ones reappear is still read once; with
    long polls of a second, as a short poll may answer nothing while messages wait on
    servers it did not sample. Stops early when a long poll finds nothing more.
    """
    counted = await sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    expected = int(counted["Attributes"].get("ApproximateNumberOfMessages", 0))
    seen: dict[str, dict[str, Any]] = {}
    received = 0
    while received < expected:
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, expected - received),
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        received += len(messages)
        for message in messages:
            seen[message["MessageId"]] = message  # the latest receipt handle is the valid one
    return list(seen.values())


async def _make_visible(sqs: Any, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        await sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ],
        )


def _oldest_first(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(messages, key=lambda m: int(m.get("Attributes", {}).get("SentTimestamp", 0)))


def _attribute(message: Mapping[str, Any], name: str) -> str | None:
    """A String message attribute's value: the notes a parked record was sent with."""
    attribute = message.get("MessageAttributes", {}).get(name)
    return None if attribute is None else str(attribute.get("StringValue"))


def _listed(items: Sequence[str]) -> str:
    return "; ".join(items[:5]) + (f" (and {len(items) - 5} more)" if len(items) > 5 else "")


def _resendable(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The envelope's attributes, without the dead-lettering notes (`tctf-reason`, ...)."""
    keep = ("DataType", "StringValue", "BinaryValue")
    return {
        name: {k: v[k] for k in keep if k in v}
        for name, v in attributes.items()
        if not name.startswith("tctf-")
    }
