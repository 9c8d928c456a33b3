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
