"""SNS notifications delivered straight to Lambda: one record per invocation, no partial answer.

The notification's `Message` is the envelope. A failed record raises `DeliveryFailed`, so
Lambda's asynchronous retries and on-failure destination take over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.aws.dead_letters import DeadLetters
from adapters.lambda_.batch import Incoming, deliver_all
from bus.dispatch import Dispatcher, Record


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
