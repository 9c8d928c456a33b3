"""The service limits that shape every message path, in one table.

Figures are AWS's documented quotas as of 2026; the in-memory transport enforces them too, so a
message that AWS would reject is rejected in tests with the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

KiB: Final = 1024
MiB: Final = 1024 * KiB


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """What one AWS service accepts per message and per batch call."""

    service: str
    max_message_bytes: int
    max_batch_entries: int
    #: The most one batch call may carry in total (entries' bodies and attributes).
    max_batch_bytes: int
    note: str


#: SNS Publish/PublishBatch: 256 KiB per message (body plus attributes) and per batch call,
#: 10 entries a batch (a topic's MaximumMessageSize may be raised; 256 KiB is the default).
SNS: Final = ServiceLimits(
    "SNS", 256 * KiB, 10, 256 * KiB, "Publish/PublishBatch; body + attributes; topic default"
)
#: SQS: raised from 256 KiB to 1 MiB in August 2025; 10 entries per SendMessageBatch.
SQS: Final = ServiceLimits(
    "SQS", 1 * MiB, 10, 1 * MiB, "SendMessage/SendMessageBatch, since 2025-08"
)
#: EventBridge PutEvents: raised from 256 KB to 1 MB on 2026-01-29; 10 entries a call.
EVENTBRIDGE: Final = ServiceLimits(
    "EventBridge", 1 * MiB, 10, 1 * MiB, "PutEvents entry, since 2026-01"
)
#: Lambda receives at most 10 records per SQS batch when a batch window is not configured.
MAX_BATCH_RECORDS: Final = 10
#: SQS's longest visibility timeout, seconds (12 hours).
MAX_VISIBILITY_TIMEOUT: Final = 43_200
#: A Lambda SQS event source mapping's highest maximum concurrency.
MAX_CONCURRENCY: Final = 1000

LIMITS: Final = {limit.service: limit for limit in (SNS, SQS, EVENTBRIDGE)}


def path_limit(*services: ServiceLimits) -> ServiceLimits:
    """The binding limit of a message path: the smallest message size on it applies."""
    return min(services, key=lambda limit: limit.max_message_bytes)
