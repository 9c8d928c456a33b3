"""Building a domain's function from its environment, once, in Lambda's init phase.

Only the configured domain is imported; the AWS SDK (botocore) only by the transport that
needs it, and the DynamoDB adapter only for a domain that keeps state. The SQS client (dead
letters, tasks) and a DynamoDB client for a domain's table or idempotency table are made
here; no call to AWS is made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any

import domains
from adapters.aws.dead_letters import DeadLetters, MemoryDeadLetters, SqsDeadLetters
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.settings import LambdaSettings
from bus import ConfigurationError, Domain
from bus.dispatch import Publisher
from bus.emf import EmfWriter, metrics_namespace
from bus.observability import configure_logging_from_env
from bus.secrets import variable as secret_variable
from bus.topology import Topology
from bus.tracing import tracer_provider_from_env

if TYPE_CHECKING:
    from adapters.aws.queues import QueueTransport
    from bus.access import Authenticator
    from bus.client import Clients
    from bus.mail import MailProvider
    from bus.middleware import IdempotencyStore
    from bus.storage.spec import TableSpec
    from bus.storage.table import Table
    from bus.websockets import Connections


def open_aws_transport(
    settings: LambdaSettings,
    topology: Topology,
    resources: AsyncExitStack,
    tracer_provider: Any | None = None,
) -> QueueTransport:
    """The AWS transport named by TCTF_TRANSPORT (`sns` or `eventbridge`), closed with
    `resources`: the function's publisher, and the owner of its SQS and DynamoDB clients.

    The AWS transports are imported here, not at module level, so that only the one in use
    is loaded. Their clients are botocore's, each call run in a worker thread: a function
    handles one invocation at a time, and this leaves aiohttp and aiobotocore out of the
    cold start. The topic ARN or bus comes from the environment, so publishing looks
    nothing up; a task queue's URL is formed from the account in that ARN.
    """
    _check_target(settings, topology)
    from adapters.aws.session import AwsSettings

    aws = AwsSettings(
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        provision=settings.provision,
        sdk="botocore",
        # A function must give up on a publish before its timeout, not after AwsSettings'
        # 60 s; each invocation lowers this further to the time it has left.
        retry_deadline=settings.publish_deadline_s,
        # The function never long-polls: this keeps botocore's read timeout at its least.
        wait_time_seconds=0,
        tracer_provider=tracer_provider,
    )
    transport: QueueTransport
    if settings.transport == "sns":
        from adapters.aws.sns_sqs import SnsSqsTransport

        transport = SnsSqsTransport(topology, aws, topic_arn=settings.topic_arn)
    else:
        from adapters.aws.eventbridge import EventBridgeTransport

        transport = EventBridgeTransport(topology, aws, account=_account(settings.event_bus))
    resources.push_async_callback(transport.aclose)
    return transport


def _account(arn: str | None) -> str | None:
    """The account of an ARN (`arn:aws:events:us-east-1:123456789012:event-bus/x`); None
    for a plain name."""
    parts = (arn or "").split(":")
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return parts[4] or None


def _check_target(settings: LambdaSettings, topology: Topology) -> None:
    """TCTF_TOPIC_ARN / TCTF_EVENT_BUS must name the topology's topic or bus."""
    if settings.transport == "sns":
        named, expected, variable = settings.topic_arn, topology.topic, "TCTF_TOPIC_ARN"
    else:
        named, expected, variable = settings.event_bus, topology.event_bus, "TCTF_EVENT_BUS"
    if named is None:
        raise ConfigurationError(f"TCTF_TRANSPORT={settings.transport} needs {variable}")
    if named.rsplit(":", 1)[-1].rsplit("/", 1)[-1] != expected:
        raise ConfigurationError(
            f"{variable}={named!r} does not name {expected!r}, the {settings.transport} "
            f"target of app {settings.app!r}; set TCTF_APP to the app that owns it"
        )


async def open_table(settings: LambdaSettings, domain: Domain, aws: QueueTransport | None) -> Table:
    """The table of a domain that keeps state, named by the topology or TCTF_TABLE_NAME.

    On AWS a `DynamoTable` on the transport's own (botocore) DynamoDB client, made here
    without calling AWS unless TCTF_PROVISION=1, which creates the table if missing (local
    runs); with the in-process transport (`aws` None) an in-memory table.
    """
    spec = Topology.from_domains([domain], app=settings.app).tables[domain.name]
    if settings.table_name:
        spec = dataclasses.replace(spec, name=settings.table_name)
    if aws is None:
        from bus.storage.memory import InMemoryTable

        return InMemoryTable(spec)
    from adapters.aws.dynamodb import DynamoTable

    dynamodb = await aws.client("dynamodb")
    if settings.provision:
        from adapters.aws.provision import TABLE_STREAM_VIEW, create_table

        await create_table(spec, client=dynamodb, stream_view=TABLE_STREAM_VIEW)
    return DynamoTable(spec, client=dynamodb)


async def open_idempotency_table(
    settings: LambdaSettings, spec: TableSpec, aws: QueueTransport | None
) -> Table:
    """The idempotency table of a domain without its own (`Topology.idempotency_tables`):
    shared by every container of the function, so a duplicate delivered to another one is
    still skipped. Created if missing only with TCTF_PROVISION=1; in memory in process."""
    if aws is None:
        from bus.storage.memory import InMemoryTable

        return InMemoryTable(spec)
    from adapters.aws.dynamodb import DynamoTable

    dynamodb = await aws.client("dynamodb")
    if settings.provision:
        from adapters.aws.provision import create_table

        await create_table(spec, client=dynamodb)
    return DynamoTable(spec, client=dynamodb)


def publish_budget_for(aws: QueueTransport | None) -> Callable[[float], None] | None:
    """What caps, at each invocation, how long the AWS transport retries a publish: never
    past the time the invocation has left (None for the in-process transport)."""
    if aws is None:
        return None
    transport, base = aws, aws.settings

    def bound(seconds: float) -> None:
        transport.settings = dataclasses.replace(
            base, retry_deadline=min(base.retry_deadline, seconds)
        )

    return bound


async def open_outbox_dlq(aws: QueueTransport, name: str) -> None:
    """Create the outbox DLQ if missing (TCTF_PROVISION=1, local runs), so that an outbox item
    that can never be published is parked rather than holding up the table's stream."""
    from adapters.aws.provision import create_dead_letter_queue

    await create_dead_letter_queue(await aws.client("sqs"), name.rstrip("/").rsplit("/", 1)[-1])


def dead_letters_for(aws: QueueTransport | None) -> DeadLetters:
    """Where parked records go: SQS on AWS (through the transport's SQS client), memory for
    the in-process transport."""
    if aws is None:
        return MemoryDeadLetters()
    return SqsDeadLetters(partial(aws.client, "sqs"))


def build(env: Mapping[str, str], *, tracer_provider: Any | None = None) -> LambdaApp:
    """The function for the environment's TCTF_DOMAIN, its clients opened on its own loop.

    Its spans go to `tracer_provider`, by default the one the OTEL_* variables describe."""
    settings = LambdaSettings.from_env(env)
    # Before the domain is imported: a deployed domain checks its keys as it loads.
    load_secrets(settings)
    domain = domains.load(settings.domain)
    if tracer_provider is None:
        tracer_provider = tracer_provider_from_env(env, service=domain.name)
    if "AWS_LAMBDA_FUNCTION_NAME" in env or env.get("TCTF_LOG_JSON") == "1":
        # In Lambda: JSON lines on stdout instead of the runtime's plain text; elsewhere
        # (tests, a local run) the process's own logging set-up is left alone.
        configure_logging_from_env(env, default_service=domain.name)
    topology = Topology.from_domains([domain], app=settings.app)
    loop = asyncio.new_event_loop()
    resources = AsyncExitStack()
    aws: QueueTransport | None = None
    publisher: Publisher
    if settings.transport == "memory":
        from bus.memory import InMemoryTransport

        publisher = InMemoryTransport(topology)
    else:
        publisher = aws = open_aws_transport(settings, topology, resources, tracer_provider)
        if settings.provision:
            # At init, not on the first publish: a record parked before anything is
            # published must find its DLQ, or SQS's own redrive moves it without its reason.
            loop.run_until_complete(aws.resources())
    table = None
    outbox_dlq = None
    if domain.storage is not None:
        table = loop.run_until_complete(open_table(settings, domain, aws))
        outbox_dlq = settings.outbox_dead_letter_queue or topology.outbox_dlqs[domain.name]
        if settings.provision and aws is not None:
            loop.run_until_complete(open_outbox_dlq(aws, outbox_dlq))
    idempotency_store: IdempotencyStore | None = None
    records = topology.idempotency_tables.get(domain.name)
    if records is not None:
        from bus.clock import SystemClock
        from bus.storage.idempotency import idempotency_store_for

        records_table = loop.run_until_complete(open_idempotency_table(settings, records, aws))
        idempotency_store = idempotency_store_for(domain, records_table, SystemClock())
    dead_letters = dead_letters_for(aws)
    if isinstance(dead_letters, SqsDeadLetters):
        # The SQS client, made in the init phase (no call to AWS); SNS's or EventBridge's
        # is made on first publish, and only a function that publishes pays for it.
        loop.run_until_complete(dead_letters.open())
    return LambdaApp(
        domain,
        publisher,
        dead_letters=dead_letters,
        dead_letter_queue=settings.dead_letter_queue,
        outbox_dead_letter_queue=outbox_dlq,
        safety_margin_ms=settings.safety_margin_ms,
        outbox_sweep_age_s=settings.outbox_sweep_age_s,
        publish_budget=publish_budget_for(aws),
        table=table,
        idempotency_store=idempotency_store,
        tracer_provider=tracer_provider,
        metrics=EmfWriter(metrics_namespace(env, settings.app)),
        loop=loop,
        resources=resources,
        clients=domain_clients(settings),
        connections=websocket_connections(settings, domain, resources),
        authenticator=websocket_authenticator(settings, domain),
        mail_provider=mail_provider(domain, aws),
        token_policy=topology.token_policy,
    )


def load_secrets(settings: LambdaSettings) -> None:
    """Read the secrets TCTF_SECRETS names, once, into `TCTF_SECRET_<NAME>` of this process's
    environment, where the domain reads them (`bus.secrets`)."""
    if not settings.secrets:
        return
    from adapters.aws.secrets import read_secrets

    found = read_secrets(
        settings.secrets, region=settings.region, endpoint_url=settings.endpoint_url
    )
    for name, versions in found.items():
        os.environ[secret_variable(name)] = json.dumps(versions)


def mail_provider(domain: Domain, aws: QueueTransport | None) -> MailProvider | None:
    """SES for a domain declaring `Mail`, with the configuration set the function names
    (no SDK imported, no client made here: that waits for the first send); None for any
    other domain, and on the in-process transport, which keeps letters locally."""
    if domain.mail is None or aws is None:
        return None
    from adapters.aws.ses import SesMailProvider

    return SesMailProvider.from_environment()


def websocket_connections(
    settings: LambdaSettings, domain: Domain, resources: AsyncExitStack
) -> Connections | None:
    """Posting to the domain's WebSocket API at TCTF_WEBSOCKET_ENDPOINT (botocore; no call
    is made here), closed with `resources`; None for a domain without a WebSocket route."""
    if domain.websocket_route is None or settings.websocket_endpoint is None:
        return None
    from adapters.aws.session import AwsSettings
    from adapters.aws.websockets import ApiGatewayConnections

    aws = AwsSettings(region_name=settings.region, provision=False, sdk="botocore")
    connections = ApiGatewayConnections(aws, settings.websocket_endpoint)
    resources.push_async_callback(connections.__aexit__, None, None, None)
    return connections


def websocket_authenticator(settings: LambdaSettings, domain: Domain) -> Authenticator | None:
    """The check of a `$connect` token: the issuer's key set read from TCTF_TOKEN_JWKS_URL,
    on first use; None (every connection refused) without it."""
    if domain.websocket_route is None or settings.jwks_url is None:
        return None
    from adapters.tokens import JwtAuthenticator, jwks_from_url
    from bus.access import TokenPolicy
    from bus.clock import SystemClock

    policy = TokenPolicy.for_app(settings.app)
    return JwtAuthenticator(policy, jwks_from_url(settings.jwks_url), SystemClock())


def domain_clients(settings: LambdaSettings) -> Clients | None:
    """HTTPS clients of the domains TCTF_DOMAIN_URLS names, signing with the function's
    credentials (read from its environment: no call is made); None if it names none."""
    if not settings.domain_urls:
        return None
    import botocore.session

    from adapters.aws.domain_api import HttpsClients

    credentials = botocore.session.get_session().get_credentials()
    return HttpsClients(settings.domain_urls, region=settings.region, credentials=credentials)
