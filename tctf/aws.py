"""The platform on AWS APIs: `tctf up` provisions the topology, `tctf run --aws` serves it.

Without an endpoint URL `run_aws` starts moto server in-process on a free loopback port, so
one command runs every domain on SNS/SQS (or EventBridge) and DynamoDB APIs locally.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack

from adapters.aws.dynamodb import DynamoTables
from adapters.aws.eventbridge import eventbridge
from adapters.aws.local import LocalEndpoint
from adapters.aws.provision import Kind, provision
from adapters.aws.session import AwsClients, AwsSettings
from adapters.aws.sns_sqs import sns_sqs
from adapters.lambda_.sqs import sqs_batch_handler
from bus.domain import Domain
from bus.errors import ConfigurationError
from bus.runtime import TableFactory, TransportFactory, memory_tables
from bus.topology import Topology
from tctf.platform import Platform

_SERVICES: dict[str, tuple[str, ...]] = {
    "sns": ("sqs", "sns"),
    "eventbridge": ("sqs", "events"),
}


def transport_factory(transport: str, settings: AwsSettings) -> TransportFactory:
    """`sns` (SNS fan-out into SQS) or `eventbridge` (EventBridge rules into SQS), each polled
    batch handed to its domain's Lambda SQS handler, as a deployed function receives it."""
    if _kind(transport) == "sns":
        return sns_sqs(settings, handler_for=sqs_batch_handler)
    return eventbridge(settings, handler_for=sqs_batch_handler)


async def up(
    endpoint_url: str | None,
    transport: str,
    domains: Sequence[Domain] | None = None,
    app: str = "tctf",
) -> None:
    """Create the queues, DLQs and topic (or bus and rules) of every domain, and the table
    of every domain that keeps state (with its outbox stream); safe to rerun."""
    if domains is None:
        from tctf.config import load_domains

        domains = load_domains()
    kind = _kind(transport)
    topology = Topology.from_domains(domains, app=app)
    settings = AwsSettings(endpoint_url=endpoint_url)
    async with AwsClients(settings, *_SERVICES[kind]) as clients:
        resources = await provision(topology, clients, kind)
    target = resources.topic_arn or f"event bus {resources.event_bus}"
    count = len(topology.tables) + len(topology.idempotency_tables)
    tables = f", {count} table{'' if count == 1 else 's'}" if count else ""
    print(
        f"tctf up: {len(topology.queues)} queues with DLQs{tables}, routed from {target}"
        f" at {endpoint_url or 'AWS'}",
        file=sys.stderr,
    )


async def run_aws(
    domains: Sequence[Domain],
    endpoint_url: str | None,
    transport: str,
    port: int | None,
    *,
    host: str = "127.0.0.1",
    app: str = "tctf",
    ready: Callable[[Platform], None] | None = None,
) -> None:
    """Serve the domains on AWS APIs until cancelled: resources provisioned from the
    topology, every queue polled and each batch handed to its domain's Lambda handler.

    Domains that keep state get a `DynamoTable` each, all on one DynamoDB client closed on
    exit; their outbox relays publish through the AWS transport.

    `ready`, if given, is called with the platform once pollers run (and HTTP listens).
    """
    kind = _kind(transport)
    local = LocalEndpoint() if endpoint_url is None else None
    if local is not None:
        endpoint_url = local.start()
    try:
        settings = AwsSettings(endpoint_url=endpoint_url)
        async with AsyncExitStack() as stack:
            tables: TableFactory = memory_tables
            if any(domain.storage is not None for domain in domains):
                tables = await stack.enter_async_context(DynamoTables(settings))
            platform = Platform(
                domains, transport=transport_factory(kind, settings), tables=tables, app=app
            )
            names = ", ".join(d.name for d in domains)
            print(
                f"tctf: {names} on {'SNS+SQS' if kind == 'sns' else 'EventBridge+SQS'} at "
                f"{endpoint_url}{' (embedded moto server)' if local else ''}"
                + (f"; HTTP on http://{host}:{port}" if port else ""),
                file=sys.stderr,
            )
            await platform.serve(host, port, ready=(lambda: ready(platform)) if ready else None)
    finally:
        if local is not None:
            local.stop()


def _kind(transport: str) -> Kind:
    if transport == "sns":
        return "sns"
    if transport == "eventbridge":
        return "eventbridge"
    raise ConfigurationError(f"transport must be 'sns' or 'eventbridge', not {transport!r}")
