"""The transport port, one small protocol per role: publishing (`Publisher`), serving the
domains (`Serving`), waiting for quiet in tests (`Settling`) and dead letters
(`DeadLetterStore`); `Transport` is all four, what a `Runtime` drives.

A caller asks for the role it needs; the in-memory transport and the AWS transports offer
every role, and one conformance suite holds them to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bus.dispatch import Dispatcher, Publisher
from bus.topology import Purpose

if TYPE_CHECKING:
    from anyio.abc import TaskStatus


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record in a DLQ: its body exactly as it was sent, and why it is there."""

    message_id: str
    body: bytes
    receive_count: int
    reason: str | None
    #: Where the record came from (queue, topic, bus or stream ARN) when whoever dead-lettered
    #: it said so; None otherwise (SQS records none when it moves a record itself).
    source: str | None = None


class _IgnoredTaskStatus:
    __slots__ = ()

    def started(self, value: object = None) -> None:
        pass


#: `serve()`'s `task_status` when it is called directly rather than by `TaskGroup.start`:
#: anyio's `TASK_STATUS_IGNORED`, defined here so that a transport imported by a Lambda
#: function does not import anyio to evaluate its default.
TASK_STATUS_IGNORED: TaskStatus[object] = _IgnoredTaskStatus()


class Serving(Protocol):
    """Delivers batches of records to each domain's dispatcher."""

    async def serve(
        self, dispatchers: Mapping[str, Dispatcher], *, task_status: TaskStatus[None] = ...
    ) -> None:
        """Deliver to the given domains until cancelled.

        Calls `task_status.started()` once everything published from then on will be
        delivered (resources exist, consumers are polling), so `TaskGroup.start` can wait
        for it.
        """
        ...


class Settling(Protocol):
    """Tells a test when everything delivered so far has been handled."""

    async def settle(self) -> None:
        """Return once nothing is left to deliver: every record handled or dead-lettered."""
        ...


class DeadLetterStore(Protocol):
    """The domains' DLQs: what each holds, and moving it back."""

    async def dead_letters(self, domain: str, purpose: Purpose = "events") -> list[DeadLetter]:
        """The records in a domain's DLQ, oldest first."""
        ...

    async def redrive(self, domain: str, purpose: Purpose = "events") -> int:
        """Move every record of a domain's DLQ back to its queue; returns how many moved."""
        ...


class Transport(Publisher, Serving, Settling, DeadLetterStore, Protocol):
    """Every role at once: publishes envelopes, serves the domains, settles, keeps DLQs."""


__all__ = [
    "TASK_STATUS_IGNORED",
    "DeadLetter",
    "DeadLetterStore",
    "Publisher",
    "Serving",
    "Settling",
    "Transport",
]
