"""EventBridge events delivered straight to Lambda: the event's `detail` is the envelope.

One event per invocation and no partial answer: a failure raises `DeliveryFailed`, so
Lambda's asynchronous retries and on-failure destination take over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from adapters.aws.dead_letters import DeadLetters
from adapters.lambda_.batch import Incoming, deliver_all
from bus.dispatch import Dispatcher, Record


def incoming_from_eventbridge_event(
    event: Mapping[str, Any], dead_letter_queue: str | None
) -> Incoming:
    """The event as one record keyed by its EventBridge `id`, routed by its `detail-type`;
    the whole event is the raw body."""
    detail = event.get("detail")
    body: bytes | Mapping[str, Any] = detail if isinstance(detail, dict) else orjson.dumps(detail)
    return Incoming(
        # An invocation is never a task queue: the record's purpose stays "events".
        Record(
            id=str(event.get("id", "")), body=body, type_attribute=str(event.get("detail-type"))
        ),
        orjson.dumps(event).decode(),
        dead_letter_queue,
        str(event.get("source", "")),
    )


async def handle_eventbridge_event(
    dispatcher: Dispatcher,
    event: Mapping[str, Any],
    *,
    deadline: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
    dead_letter_queue: str | None = None,
) -> None:
    """Dispatch the event; raise `DeliveryFailed` if it must be delivered again."""
    incoming = [incoming_from_eventbridge_event(event, dead_letter_queue)]
    await deliver_all(dispatcher, incoming, deadline=deadline, dead_letters=dead_letters)
