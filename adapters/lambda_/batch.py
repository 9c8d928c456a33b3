"""One path for every record source that feeds the dispatcher (SQS, SNS, EventBridge).

Records are dispatched in order; parked records go to their DLQ with the reason, and only
those the DLQ accepted count as done. What comes back is every record to deliver again.
A record leaving for its DLQ, parked here or failing its queue's last allowed receive, gets
one ERROR "dead-lettered" line (`bus.observability.log_dead_lettered`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.aws.dead_letters import DeadLetters, Letter
from adapters.lambda_.errors import DeliveryFailed
from bus.dispatch import Dispatcher, Record
from bus.observability import log_dead_lettered

_log = logging.getLogger("tctf.lambda")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A record as the dispatcher reads it, plus what is needed to dead-letter it intact."""

    record: Record
    #: The body exactly as AWS delivered it, kept for the DLQ.
    raw: str
    #: The DLQ for this record (name or URL); None: none known, a parked record is retried.
    dead_letter_queue: str | None
    #: Where the record came from (queue, topic or event bus ARN).
    source: str = ""
    #: Receives after which its queue's redrive moves it to `dead_letter_queue`
    #: (maxReceiveCount); None: no redrive (SNS, EventBridge).
    max_receive_count: int | None = None

    @property
    def on_last_receive(self) -> bool:
        """Failing now, the record is dead-lettered by its queue's redrive, not retried."""
        limit = self.max_receive_count
        return limit is not None and self.record.receive_count >= limit


async def deliver(
    dispatcher: Dispatcher,
    incoming: Sequence[Incoming],
    *,
    deadline: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
) -> dict[str, str]:
    """Dispatch the records; return those that must be delivered again, with the reason."""
    result = await dispatcher.dispatch([i.record for i in incoming], deadline=deadline)
    failed = dict(result.failed)
    if result.parked:
        failed.update(await _dead_letter(incoming, result.parked, dead_letters, dispatcher))
    last = {i.record.id: i for i in incoming if i.on_last_receive and i.record.id in failed}
    for record_id, reason in result.failed.items():
        if record_id in last:
            continue
        _log.warning(
            "record %s failed, delivered again later: %s",
            record_id,
            reason,
            extra={"service": dispatcher.domain.name, "record_id": record_id, "reason": reason},
        )
    for record_id, arrived in last.items():
        # SQS's redrive moves it on its next receive, saying nothing: this line is all.
        count = arrived.record.receive_count
        _log_dead_lettered(
            arrived,
            dispatcher,
            f"received {count} times without success (max_receive_count "
            f"{arrived.max_receive_count}); last error: {failed[record_id]}",
        )
    return failed


async def _dead_letter(
    incoming: Sequence[Incoming],
    parked: dict[str, str],
    dead_letters: DeadLetters | None,
    dispatcher: Dispatcher,
) -> dict[str, str]:
    """Send parked records to their DLQ; return those that could not be sent."""
    letters = [
        Letter(i.record.id, i.dead_letter_queue, i.raw, parked[i.record.id], i.source)
        for i in incoming
        if i.record.id in parked and i.dead_letter_queue is not None
    ]
    stored = await dead_letters.send(letters) if dead_letters is not None and letters else set()
    unsent: dict[str, str] = {}
    for arrived in incoming:
        record_id = arrived.record.id
        if record_id in stored:
            _log_dead_lettered(arrived, dispatcher, parked[record_id])
    for record_id, reason in parked.items():
        if record_id in stored:
            continue
        _log.error(
            "record %s parked (not dead-lettered, retried): %s",
            record_id,
            reason,
            extra={"service": dispatcher.domain.name, "record_id": record_id, "reason": reason},
        )
        unsent[record_id] = reason
    return unsent


def _log_dead_lettered(arrived: Incoming, dispatcher: Dispatcher, reason: str) -> None:
    record = arrived.record
    log_dead_lettered(
        _log,
        service=dispatcher.domain.name,
        queue=arrived.source.rsplit(":", 1)[-1],
        dlq=arrived.dead_letter_queue,
        message_id=record.id,
        body=record.body,
        type_attribute=record.type_attribute,
        reason=reason,
        receive_count=record.receive_count,
    )


async def deliver_all(
    dispatcher: Dispatcher,
    incoming: Sequence[Incoming],
    *,
    deadline: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
) -> None:
    """For sources with no partial answer (SNS, EventBridge): raise `DeliveryFailed` if any
    record must be delivered again, so Lambda's retries and on-failure destination act."""
    failed = await deliver(dispatcher, incoming, deadline=deadline, dead_letters=dead_letters)
    if failed:
        raise DeliveryFailed(failed)
