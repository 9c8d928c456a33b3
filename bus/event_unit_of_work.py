"""One handler call's transaction: its item writes, its events, and its "handled" record.

Events published through it go to the table's outbox in the same transaction; the relay
publishes them after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bus.envelope import Envelope, check_message_size
from bus.errors import ConfigurationError
from bus.limits import SNS
from bus.messages import Event

if TYPE_CHECKING:
    from bus.context import Context
    from bus.storage.conditions import Condition
    from bus.storage.unit_of_work import UnitOfWork


class EventUnitOfWork:
    """Item writes and published events of one handler call, committed as one transaction."""

    def __init__(
        self, context: Context, writes: UnitOfWork, on_commit: Callable[[], None] | None
    ) -> None:
        self._context = context
        self._writes = writes
        self._on_commit = on_commit

    async def __aenter__(self) -> EventUnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._writes.__aexit__(exc_type, exc, traceback)
        if exc_type is None and self._writes.events and self._on_commit is not None:
            self._on_commit()

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._writes.put(item, condition=condition)

    def update(
        self,
        key: Mapping[str, Any],
        *,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        add: Mapping[str, Any] | None = None,
        condition: Condition | None = None,
    ) -> None:
        self._writes.update(key, set=set, remove=remove, add=add, condition=condition)

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._writes.delete(key, condition=condition)

    def check(self, key: Mapping[str, Any], condition: Condition) -> None:
        self._writes.check(key, condition)

    def publish(self, event: Event, *, subject: str | None = None) -> Envelope:
        """Stage an event in the outbox; `subject` (the aggregate id) orders its events."""
        if not isinstance(event, Event):
            raise ConfigurationError(f"publish() takes an Event, got {type(event).__name__}")
        envelope = self._context.envelope_for(event, subject)
        body = envelope.encode()
        check_message_size(envelope, body, SNS)
        self._writes.publish(body, ordering_key=subject or envelope.id, event_id=envelope.id)
        return envelope
