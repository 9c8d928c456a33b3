"""SNS notifications delivered straight to Lambda: one record per invocation, no partial answer.

The notification's `Message` is the envelope. A failed record raises `DeliveryFailed`, so
Lambda's asynchronous retries and on-failure destination take over.

A mail provider's notifications (SES bounces and complaints, on the domain's own topic) are
no envelopes: `handle_notifications` hands each, as the SNS notification document, to the
INTERNAL route the domain declared for them (`Domain(..., mail=Mail(notifications=...))`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adapters.aws.dead_letters import DeadLetters
from adapters.lambda_.batch import Incoming, deliver_all
from adapters.lambda_.errors import DeliveryFailed
from bus.dispatch import Dispatcher, Record

if TYPE_CHECKING:
    from bus.http import HttpRouter

#: The SNS notification document's fields, as a Lambda record's `Sns` object carries them.
_DOCUMENT_FIELDS = (
    "Type",
    "MessageId",
    "TopicArn",
    "Subject",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertUrl",
    "UnsubscribeUrl",
)


def from_topic(event: Mapping[str, Any], suffix: str) -> bool:
    """Whether every record of the invocation came from a topic whose name ends `suffix`."""
    records = event.get("Records") or ()
    return bool(records) and all(
        str(r.get("Sns", {}).get("TopicArn", "")).rpartition(":")[2].endswith(suffix)
        for r in records
    )


async def handle_notifications(router: HttpRouter, event: Mapping[str, Any], path: str) -> None:
    """POST each notification to the domain's route at `path`, as a platform caller; raise
    `DeliveryFailed` (retried, then the on-failure destination) for any not answered 2xx."""
    import orjson

    from bus.http import HttpRequest

    failed: dict[str, str] = {}
    for r in event.get("Records", ()):
        sns = r.get("Sns", {})
        document = {name: sns[name] for name in _DOCUMENT_FIELDS if name in sns}
        request = HttpRequest(
            "POST",
            path,
            headers={"content-type": "application/json"},
            body=orjson.dumps(document),
        )
        response = await router.handle(request, internal=True)
        if not 200 <= response.status < 300:
            detail = response.body[:500].decode(errors="replace")
            reason = f"{path} answered {response.status}: {detail}"
            failed[str(sns.get("MessageId", ""))] = reason
    if failed:
        raise DeliveryFailed(failed)


def incoming_from_sns_event(
    event: Mapping[str, Any], dead_letter_queue: str | None
) -> list[Incoming]:
    """Each SNS record, keyed by the notification's `MessageId`, with the `type` message
    attribute it was routed by."""
    incoming: list[Incoming] = []
    for r in event.get("Records", ()):
        sns = r.get("Sns", {})
        message = sns.get("Message", "")
        attribute = sns.get("MessageAttributes", {}).get("type")
        routed = attribute.get("Value", "") if isinstance(attribute, Mapping) else None
        # An invocation is never a task queue: the record's purpose stays "events".
        record = Record(
            id=sns.get("MessageId", ""),
            body=message.encode(),
            type_attribute=routed if isinstance(routed, str | None) else "",
        )
        incoming.append(Incoming(record, message, dead_letter_queue, sns.get("TopicArn", "")))
    return incoming


async def handle_sns_event(
    dispatcher: Dispatcher,
    event: Mapping[str, Any],
    *,
    deadline: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
    dead_letter_queue: str | None = None,
) -> None:
    """Dispatch the notification; raise `DeliveryFailed` if it must be delivered again."""
    incoming = incoming_from_sns_event(event, dead_letter_queue)
    await deliver_all(dispatcher, incoming, deadline=deadline, dead_letters=dead_letters)
