"""One handler call's transaction: its item writes, its events and tasks, and its "handled"
record.

Events published and tasks sent through it (or through the handler's context before the
commit) go to the table's outbox in the same transaction; the relay sends them after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bus.envelope import Envelope, check_message_size
from bus.errors import ClaimLost, ConfigurationError
from bus.limits import SNS, SQS
from bus.messages import Event, Task
from bus.storage.errors import TransactionCanceled

if TYPE_CHECKING:
    from bus.context import Context
    from bus.storage.conditions import Condition
    from bus.storage.unit_of_work import UnitOfWork


class EventUnitOfWork:
    """Item writes, published events and sent tasks of one handler call, committed as one
    transaction.

    With `records_done`, the first staged write is the handler's "handled" record,
    conditional on its claim: if that condition fails, the claim was lost and the commit
    raises `ClaimLost`.
    """

    def __init__(
        self,
        context: Context,
        writes: UnitOfWork,
        on_commit: Callable[[], None] | None,
        *,
        records_done: bool = False,
    ) -> None:
        self._context = context
        self._writes = writes
        self._on_commit = on_commit
        self._records_done = records_done

    async def __aenter__(self) -> EventUnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            for envelope in self._context.take_staged():
                self._stage(envelope)
        try:
            await self._writes.__aexit__(exc_type, exc, traceback)
        except TransactionCanceled as canceled:
            reasons = canceled.reasons
            if self._records_done and reasons and reasons[0].code == "ConditionalCheckFailed":
                raise ClaimLost(
                    "this delivery's claim was lost (its lease ran out and another delivery "
                    "took it, or its effect is already committed); nothing was written"
                ) from canceled
            raise
        if exc_type is not None:
            return
        self._context.mark_committed()
        if self._writes.events and self._on_commit is not None:
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
        self._stage(envelope)
        return envelope

    def send(self, task: Task) -> Envelope:
        """Stage a task for its domain's task queue; it leaves with the commit, never without."""
        if not isinstance(task, Task):
            raise ConfigurationError(f"send() takes a Task, got {type(task).__name__}")
        if self._context.sender is not None:
            self._context.sender.check_send(task)  # the same rule as ctx.send
        envelope = self._context.envelope_for(task)
        self._stage(envelope)
        return envelope

    def _stage(self, envelope: Envelope) -> None:
        body = envelope.encode()
        data = envelope.data
        if isinstance(data, Task):
            check_message_size(envelope, body, SQS)
            self._writes.send(
                body, ordering_key=envelope.id, event_id=envelope.id, task_domain=data.domain
            )
        else:
            check_message_size(envelope, body, SNS)
            key = envelope.subject or envelope.id
            self._writes.publish(body, ordering_key=key, event_id=envelope.id)
