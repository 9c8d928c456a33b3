"""The whole-platform story on AWS APIs, composed as `tctf run --aws` composes it: SNS+SQS,
then EventBridge+SQS, with DynamoDB tables and SES mail, on a moto server in this process.
The pollers hand each batch to the domains' Lambda handler; the runtime's clock is a
`ManualClock`, moved for the TOTP step and the campaign's minute; each step settles with
`Runtime.settle()`. The story ends in the state it ends in on the in-memory transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.aws.dynamodb import DynamoTable
from adapters.aws.eventbridge import EventBridgeTransport
from adapters.aws.local import LocalEndpoint
from adapters.aws.queues import QueueTransport
from adapters.aws.sns_sqs import SnsSqsTransport
from tests.scenario.platform import AwsPlatform, whole_platform_on_aws
from tests.scenario.test_whole_platform import EXPECTED, dead_letters, summary, tell

TRANSPORTS: dict[str, type[QueueTransport]] = {
    "sns": SnsSqsTransport,
    "eventbridge": EventBridgeTransport,
}


@pytest.fixture(scope="module")
def embedded_moto() -> Iterator[str]:
    """moto server in this process, patched as `tctf run --aws`'s embedded one is."""
    with LocalEndpoint() as url:
        yield url


async def outbox_dead_letters(p: AwsPlatform) -> dict[str, list[Any]]:
    """Every stateful domain's parked outbox items, where there are any."""
    transport = p.runtime.transport
    assert isinstance(transport, QueueTransport)
    found = {}
    for domain in p.runtime.topology.outbox_dlqs:
        if letters := await transport.outbox_dead_letters(domain):
            found[domain] = letters
    return found


@pytest.mark.parametrize("transport", ["sns", "eventbridge"])
async def test_on_aws_apis_the_story_ends_in_the_same_state(
    monkeypatch: pytest.MonkeyPatch, embedded_moto: str, transport: str
) -> None:
    async with whole_platform_on_aws(monkeypatch, embedded_moto, transport) as p:
        assert isinstance(p.runtime.transport, TRANSPORTS[transport])
        assert {type(table) for table in p.runtime.tables.values()} == {DynamoTable}
        seen = await summary(await tell(p))
        parked = await dead_letters(p)
        parked_outbox = await outbox_dead_letters(p)
    assert seen == EXPECTED
    assert not parked, parked
    assert not parked_outbox, parked_outbox
