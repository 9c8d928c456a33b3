"""The outbox sweep: on a schedule, publish the outbox events the table's stream left behind.

A stream record that keeps failing ages out of the stream after 24 hours, and its outbox item
would then wait in the table with nobody to publish it. An EventBridge schedule invokes the
function, which publishes, per ordering key and in order, every event older than the sweep
age and deletes it, as `OutboxRelay` does; younger events are left to the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from adapters.aws.dead_letters import DeadLetters
from adapters.lambda_.errors import OutboxItemNotPublished
from adapters.lambda_.streams import StreamRecord, outbox_relay, relay_record
from bus.dispatch import Publisher
from bus.storage.outbox import OutboxRelay
from bus.storage.table import Table

_log = logging.getLogger("tctf.lambda")


async def sweep_outbox(
    table: Table,
    publisher: Publisher,
    *,
    older_than: float,
    now: Callable[[], float],
    should_stop: Callable[[], bool] | None = None,
    dead_letters: DeadLetters | None = None,
    dead_letter_queue: str | None = None,
) -> int:
    """Publish the outbox events of `table` committed at least `older_than` seconds before
    `now()`, each key's in order, and delete them; return how many were swept.

    Each item goes the way a stream record of it would (`streams.relay_record`): published,
    or, if it can never be (unreadable, over the size limit, refused as the sender's fault),
    parked in `dead_letter_queue` with the reason, so it does not hold up its key. One that
    fails otherwise stays pending with the rest of its key, and the other keys go on. Items
    are taken one at a time, as the stream takes records: `should_stop()` is asked before
    each, and a failure republishes nothing that was already sent.
    """
    relay = outbox_relay(publisher)  # no delete: OutboxRelay deletes what it hands over
    pk, sk = table.spec.key_names

    async def publish(items: list[dict[str, Any]]) -> None:
        for item in items:
            record = StreamRecord(
                sequence_number=f"{item[pk]} {item[sk]}",
                event_name="INSERT",
                keys={pk: item[pk], sk: item[sk]},
                new_image=item,
                old_image=None,
                source=table.spec.name,
            )
            reason = await relay_record(relay, record, None, dead_letters, dead_letter_queue)
            if reason is not None:
                raise OutboxItemNotPublished(record.sequence_number, reason)

    outbox = OutboxRelay(table, publish_items=publish, batch_size=1, now=now)
    swept = await outbox.relay_once(older_than, should_stop=should_stop)
    if swept:
        # The stream relays an event within seconds; one this old means it did not.
        _log.warning(
            "outbox sweep: %d event(s) older than %ss were still pending in %s; the table's "
            "stream did not relay them, the sweep did",
            swept,
            older_than,
            table.spec.name,
        )
    else:
        _log.debug(
            "outbox sweep: no event older than %ss pending in %s", older_than, table.spec.name
        )
    return swept
