"""Reading a queue out in a test: every message SQS (moto) holds, with its attributes."""

from __future__ import annotations

from typing import Any


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive from the queue at `url` until it answers empty (a boto3 SQS client)."""
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages"):
        messages.extend(batch)
    return messages
