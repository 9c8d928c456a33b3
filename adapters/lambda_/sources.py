"""Which AWS service sent an invocation, told from the payload's own shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from adapters.lambda_.errors import UnsupportedEvent

Source = Literal["sqs", "sns", "eventbridge", "schedule", "http", "websocket", "dynamodb"]

ACCEPTED = (
    "SQS, SNS, EventBridge (domain events and Scheduled Events), "
    "API Gateway HTTP API (payload format 2.0), API Gateway WebSocket API and DynamoDB Streams"
)
_RECORD_SOURCES: dict[str, Source] = {
    "aws:sqs": "sqs",
    "aws:sns": "sns",
    "aws:dynamodb": "dynamodb",
}


def event_source(event: Any) -> Source:
    """The service an event came from; `UnsupportedEvent` for any other shape."""
    if not isinstance(event, Mapping):
        raise UnsupportedEvent(
            f"a Lambda event is a JSON object, got {type(event).__name__}; "
            f"this handler accepts {ACCEPTED} events"
        )
    records = event.get("Records")
    if isinstance(records, list):
        return _records_source(records)
    if "detail-type" in event and "detail" in event:
        return "schedule" if _is_scheduled(event) else "eventbridge"
    context = event.get("requestContext")
    if isinstance(context, Mapping) and "connectionId" in context and "eventType" in context:
        return "websocket"
    if isinstance(context, Mapping) and "http" in context:
        if event.get("version") != "2.0":
            raise UnsupportedEvent(
                f"API Gateway payload format {event.get('version')!r} is not supported; "
                "configure the HTTP API integration with payloadFormatVersion 2.0"
            )
        return "http"
    if "httpMethod" in event:
        raise UnsupportedEvent(
            "API Gateway REST API (payload format 1.0) events are not supported; "
            "use an HTTP API with payloadFormatVersion 2.0"
        )
    keys = ", ".join(sorted(map(str, event))[:8]) or "none"
    raise UnsupportedEvent(
        f"unrecognised Lambda event (top-level keys: {keys}); "
        f"this handler accepts {ACCEPTED} events"
    )


def _is_scheduled(event: Mapping[str, Any]) -> bool:
    """An EventBridge scheduled rule's tick. No domain event passes for one: sources starting
    with "aws." are EventBridge's own, refused to anyone else's PutEvents."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def _records_source(records: list[Any]) -> Source:
    if not records:
        raise UnsupportedEvent("the event's Records list is empty; nothing to handle")
    first = records[0] if isinstance(records[0], Mapping) else {}
    name = first.get("eventSource") or first.get("EventSource")
    source = _RECORD_SOURCES.get(str(name))
    if source is None:
        raise UnsupportedEvent(
            f"records from {name!r} are not supported; this handler accepts {ACCEPTED} events"
        )
    return source
