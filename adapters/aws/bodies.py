"""The envelope inside an SQS message body, whichever way it arrived: raw (SNS raw delivery,
a task sent straight to SQS), wrapped in an SNS notification, or as an EventBridge event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def unwrap(body: str | bytes) -> bytes | Mapping[str, Any]:
    """The envelope inside an SQS body: parsed when a wrapper had to be opened.

    Anything unrecognised is passed on as it came, so the dispatcher reports it as malformed
    (with the reason) instead of the batch failing here.
    """
    return open_body(body)[0]


def open_body(body: str | bytes) -> tuple[bytes | Mapping[str, Any], str | None]:
    """`unwrap`, and the type a wrapper says the envelope was routed by: an SNS
    notification's `type` message attribute, an EventBridge event's `detail-type`."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (body if isinstance(body, bytes) else body.encode()), None
    if isinstance(parsed, dict):
        if parsed.get("Type") == "Notification" and isinstance(parsed.get("Message"), str):
            message: str = parsed["Message"]
            attributes = parsed.get("MessageAttributes")
            attribute = attributes.get("type") if isinstance(attributes, dict) else None
            if attribute is None:
                return message.encode(), None
            routed = attribute.get("Value") if isinstance(attribute, dict) else None
            return message.encode(), routed if isinstance(routed, str) else ""
        if "detail-type" in parsed and isinstance(parsed.get("detail"), dict):
            detail: Mapping[str, Any] = parsed["detail"]
            detail_type = parsed["detail-type"]
            return detail, detail_type if isinstance(detail_type, str) else ""
        return parsed, None
    return (body if isinstance(body, bytes) else body.encode()), None
