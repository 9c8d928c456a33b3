"""Events through an EventBridge custom bus, one rule per consuming domain's SQS queue.

PutEvents, ten entries a call: `Source` is the producing domain, `DetailType` the event
type, `Detail` the envelope. Each rule's pattern is `Topology.event_pattern`; the consumer
unwraps the EventBridge event (`adapters.aws.bodies.unwrap`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from adapters.aws.batches import TRANSIENT_CODES, EntryFailure, put_in_batches
from adapters.aws.bodies import unwrap
from adapters.aws.queues import QueueTransport
from adapters.aws.session import AwsSettings
from bus.clock import Clock
from bus.envelope import Envelope
from bus.errors import MessageTooLarge
from bus.limits import EVENTBRIDGE, SQS, ServiceLimits, path_limit
from bus.topology import Topology
from bus.transport import Transport

if TYPE_CHECKING:
    from adapters.aws.poller import HandlerFactory
    from bus.runtime import TransportFactory

#: Bytes EventBridge adds around `Detail` when it delivers to SQS (id, time, account,
#: region, version, resources): kept free so the delivered event fits the queue too.
DELIVERY_OVERHEAD = 512


class EventBridgeTransport(QueueTransport):
    """Custom bus → one rule per events queue → SQS queues with DLQs → pollers."""

    kind = "eventbridge"
    services = ("sqs", "events")
    #: An entry must fit PutEvents and, wrapped as an event, the target queue.
    publish_limits: ServiceLimits = path_limit(EVENTBRIDGE, SQS)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """PutEvents every envelope; all are size-checked before any is sent."""
        entries = [(f"{e.type} {e.id}", self._entry(e)) for e in envelopes]
        if not entries:
            return
        await self._ready()  # provisions the bus and rules first when the settings say so
        events = await self.client("events")

        async def call(batch: Sequence[tuple[str, dict[str, Any]]]) -> list[EntryFailure]:
            response = await events.put_events(Entries=[entry for _, entry in batch])
            if not response.get("FailedEntryCount"):
                return []
            # Results come back in request order; a failed one carries an ErrorCode.
            return [
                EntryFailure(
                    batch_id,
                    result["ErrorCode"],
                    result.get("ErrorMessage", ""),
                    sender_fault=result["ErrorCode"] not in TRANSIENT_CODES,
                )
                for (batch_id, _), result in zip(batch, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]

        await put_in_batches(
            "EventBridge PutEvents",
            entries,
            call,
            self.settings,
            size=_entry_size,
            max_batch_bytes=self.publish_limits.max_batch_bytes,
        )

    def _dead_letter_body(self, body: str) -> bytes:
        """The queue holds the EventBridge event; its `detail` is the envelope."""
        envelope = unwrap(body)
        return envelope if isinstance(envelope, bytes) else orjson.dumps(envelope)

    def _entry(self, envelope: Envelope) -> dict[str, Any]:
        body = envelope.encode()
        # AWS's entry size: Source, DetailType and Detail bytes (plus Time, not set here).
        size = len(envelope.source.encode()) + len(envelope.type.encode()) + len(body)
        limit = self.publish_limits
        if size + DELIVERY_OVERHEAD > limit.max_message_bytes:
            raise MessageTooLarge(
                size + DELIVERY_OVERHEAD,
                limit.max_message_bytes,
                limit.service,
                f"{envelope.type} {envelope.id}",
            )
        return {
            "EventBusName": self.topology.event_bus,
            "Source": envelope.source,
            "DetailType": envelope.type,
            "Detail": body.decode(),
        }


def eventbridge(
    settings: AwsSettings | None = None, *, handler_for: HandlerFactory
) -> TransportFactory:
    """A `Runtime` transport factory for EventBridge+SQS on the given endpoint, handing each
    polled batch to the handler `handler_for` builds for its domain."""

    def build(topology: Topology, clock: Clock) -> Transport:
        return EventBridgeTransport(topology, settings, handler_for=handler_for)

    return build


def _entry_size(entry: Mapping[str, Any]) -> int:
    """EventBridge's PutEvents entry size: Source, DetailType and Detail (Time is not set)."""
    return sum(len(entry.get(k, "").encode()) for k in ("Source", "DetailType", "Detail"))
