"""`tctf up` and `tctf run --aws`: the example domains on AWS APIs, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.aws.provision import rule_name
from adapters.aws.session import AwsClients, AwsSettings
from bus.storage import UnitOfWork
from bus.topology import Topology
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users
from domains.users.contracts import UserCreated
from tctf.aws import up

from .conftest import DeliveryLog, aws_platform


@pytest.mark.parametrize("transport", ["sns", "eventbridge"])
async def test_run_aws_without_an_endpoint_serves_the_domains_on_embedded_moto(
    transport: str,
    app: str,
    deliveries: DeliveryLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # it records its endpoint in .tctf/ of the working directory
    async with aws_platform([users, messaging], None, transport, app) as platform:
        runtime = platform.runtime
        await runtime.publish(
            UserCreated(user_id="u1", email="ada@example.com", name="Ada"), source="users"
        )
        await runtime.transport.settle()
        while await runtime.relay():  # the welcome task leaves through the outbox
            await runtime.transport.settle()
    handled = sorted(deliveries.handled())
    assert handled == ["messaging_consumers.deliver", "messaging_consumers.welcome_new_user"]


async def test_up_provisions_every_domain_and_is_safe_to_run_again(
    moto_endpoint: str, app: str
) -> None:
    for _ in range(2):
        await up(moto_endpoint, "eventbridge", [users, messaging], app=app)
    topology = Topology.from_domains([users, messaging], app=app)
    settings = AwsSettings(endpoint_url=moto_endpoint)
    async with AwsClients(settings, "sqs", "events") as clients:
        listed = await clients.sqs.list_queues(QueueNamePrefix=app)
        rules = await clients.events.list_rules(EventBusName=topology.event_bus)
    names = sorted(url.rsplit("/", 1)[-1] for url in listed["QueueUrls"])
    assert names == sorted(
        [*(n for q in topology.queues for n in (q.name, q.dlq)), *topology.outbox_dlqs.values()]
    )
    assert [r["Name"] for r in rules["Rules"]] == [
        rule_name(q.name) for q in topology.queues if q.purpose == "events"
    ]


async def test_run_aws_parks_an_unpublishable_outbox_item_in_the_domains_outbox_dlq(
    moto_endpoint: str, app: str
) -> None:
    """The in-process relay of `tctf run --aws` parks as the stream relay does in Lambda:
    in the outbox DLQ, with the reason, not in the process's memory."""
    async with aws_platform([users], moto_endpoint, "sns", app) as platform:
        runtime = platform.runtime
        async with UnitOfWork(runtime.tables["users"], now=runtime.clock.now) as uow:
            uow.publish(b"not an envelope", ordering_key="u9", event_id="broken")
        await runtime.relay()
        letters = await runtime.transport.outbox_dead_letters("users")  # type: ignore[attr-defined]
        pending = await runtime.relays["users"].pending()

    (letter,) = letters
    assert letter.reason is not None and letter.reason.startswith("MalformedEnvelope")
    assert runtime.outbox_dead_letters == {}
    assert not pending
