"""SNS and SQS batch entries: an envelope's message attributes, and the bytes an entry
counts towards a batch request's total."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bus.envelope import Envelope
from bus.envelope import message_attributes as envelope_attributes


def message_attributes(envelope: Envelope) -> dict[str, dict[str, str]]:
    """The SNS/SQS message attributes of an envelope: what filter policies and tracing read."""
    return {
        name: {"DataType": kind, "StringValue": value}
        for name, (kind, value) in envelope_attributes(envelope).items()
    }


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes an SNS or SQS batch entry counts towards the batch total: body and attributes."""
    body = entry.get("Message", entry.get("MessageBody", ""))
    return len(body.encode()) + sum(
        len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
        for name, value in entry.get("MessageAttributes", {}).items()
    )
