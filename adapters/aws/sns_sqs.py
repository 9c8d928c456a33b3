"""Events through SNS fan-out into each consuming domain's SQS queue.

One platform topic; each events queue subscribes with raw message delivery and the filter
policy `Topology.filter_policy` gives it. Envelopes go out with PublishBatch, ten at a time,
carrying `type`, `dataversion`, `source`, `correlationid` and `traceparent` as attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters.aws.batches import EntryFailure, put_in_batches
from adapters.aws.entries import entry_size, message_attributes
from adapters.aws.queues import QueueTransport
from adapters.aws.session import AwsSettings
from bus.clock import Clock
from bus.envelope import Envelope, check_message_size
from bus.limits import SNS, SQS, ServiceLimits, path_limit
from bus.topology import Topology
from bus.transport import Transport

if TYPE_CHECKING:
    from adapters.aws.poller import HandlerFactory
    from bus.runtime import TransportFactory


class SnsSqsTransport(QueueTransport):
    """SNS topic → filtered raw subscriptions → SQS queues with DLQs → pollers."""

    kind = "sns"
    services = ("sqs", "sns")
    #: Publishing goes through SNS into SQS: SNS's 256 KiB (body plus attributes) applies.
    publish_limits: ServiceLimits = path_limit(SNS, SQS)

    def __init__(
        self,
        topology: Topology,
        settings: AwsSettings | None = None,
        *,
        handler_for: HandlerFactory | None = None,
        topic_arn: str | None = None,
    ) -> None:
        """`topic_arn`, when known (a Lambda's TCTF_TOPIC_ARN), is published to without
        looking up the topology first, and names the account holding the queues."""
        account = topic_arn.split(":")[4] if topic_arn and topic_arn.count(":") >= 5 else None
        super().__init__(topology, settings, handler_for=handler_for, account=account or None)
        self.topic_arn = topic_arn

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """PublishBatch every envelope; all are size-checked before any is sent."""
        entries = [(f"{e.type} {e.id}", self._entry(e)) for e in envelopes]
        if not entries:
            return
        resources = await self._ready()
        topic_arn = self.topic_arn if resources is None else resources.topic_arn
        if topic_arn is None:
            topic_arn = (await self.resources()).topic_arn
        sns = await self.client("sns")

        async def call(batch: Sequence[tuple[str, dict[str, Any]]]) -> list[EntryFailure]:
            response = await sns.publish_batch(
                TopicArn=topic_arn,
                PublishBatchRequestEntries=[{"Id": i, **entry} for i, entry in batch],
            )
            return [
                EntryFailure(
                    f["Id"], f.get("Code", ""), f.get("Message", ""), bool(f.get("SenderFault"))
                )
                for f in response.get("Failed", ())
            ]

        await put_in_batches(
            "SNS PublishBatch",
            entries,
            call,
            self.settings,
            size=entry_size,
            max_batch_bytes=self.publish_limits.max_batch_bytes,
        )

    def _entry(self, envelope: Envelope) -> dict[str, Any]:
        body = envelope.encode()
        attributes = message_attributes(envelope)
        check_message_size(envelope, body, self.publish_limits)
        return {"Message": body.decode(), "MessageAttributes": attributes}


def sns_sqs(
    settings: AwsSettings | None = None, *, handler_for: HandlerFactory
) -> TransportFactory:
    """A `Runtime` transport factory for SNS+SQS on the given endpoint, handing each
    polled batch to the handler `handler_for` builds for its domain."""

    def build(topology: Topology, clock: Clock) -> Transport:
        return SnsSqsTransport(topology, settings, handler_for=handler_for)

    return build
