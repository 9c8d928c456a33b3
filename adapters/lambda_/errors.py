"""Errors raised by the Lambda adapter, each saying what arrived and what to do about it."""

from __future__ import annotations

from collections.abc import Mapping

from bus.errors import BusError


class LambdaAdapterError(BusError):
    """Base class of the errors the Lambda adapter raises."""


class UnsupportedEvent(LambdaAdapterError):
    """The invocation payload is no event shape this handler accepts."""


class UnreadableStreamRecord(UnsupportedEvent):
    """A DynamoDB Streams record whose image this handler cannot read (an attribute value of
    no type DynamoDB documents): the invocation fails and Lambda retries the shard."""


class DeliveryFailed(LambdaAdapterError):
    """Records of an asynchronous invocation (SNS, EventBridge) failed.

    Raised so that Lambda retries the invocation and, once its retries are spent, hands it to
    the function's on-failure destination; a partial answer is not possible for these sources.
    """

    def __init__(self, failed: Mapping[str, str]) -> None:
        self.failed = dict(failed)
        reasons = "; ".join(f"{record}: {reason}" for record, reason in self.failed.items())
        super().__init__(f"{len(self.failed)} record(s) failed and will be retried: {reasons}")


class OutboxItemNotPublished(LambdaAdapterError):
    """An outbox item the sweep could not publish this time (its target unreachable, or no
    DLQ to park it in): it stays pending, with every later event of its key, for the next
    sweep or the table's stream."""

    def __init__(self, item: str, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(f"outbox item {item} stays pending: {reason}")
