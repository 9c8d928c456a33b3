"""Building a domain's function from its environment, once, in Lambda's init phase.

Only the configured domain is imported; the AWS SDK is imported only by the transport that
needs it, and the dead-letter client is opened on first use, off the cold path.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from adapters.lambda_.app import LambdaApp
from adapters.lambda_.dead_letters import DeadLetters, MemoryDeadLetters, SqsDeadLetters
from adapters.lambda_.settings import LambdaSettings
from bus import ConfigurationError, Domain, Publisher, Topology


def load_domain(name: str) -> Domain:
    """Import `domains.<name>.app` and return its `domain`."""
    try:
        module = importlib.import_module(f"domains.{name}.app")
    except ModuleNotFoundError as error:
        if error.name in ("domains", f"domains.{name}", f"domains.{name}.app"):
            raise ConfigurationError(
                f"TCTF_DOMAIN={name!r}: no module domains.{name}.app in this package"
            ) from None
        raise
    domain = getattr(module, "domain", None)
    if not isinstance(domain, Domain) or domain.name != name:
        raise ConfigurationError(f"domains/{name}/app.py must define domain = Domain({name!r})")
    return domain


async def open_publisher(
    settings: LambdaSettings, domain: Domain, resources: AsyncExitStack
) -> Publisher:
    """The publisher named by TCTF_TRANSPORT, closed with `resources`.

    The AWS transports are imported here, not at module level, so that only the one in use
    is loaded; each opens its clients and looks up its queues on first publish and keeps
    them for the container's life.
    """
    topology = Topology.from_domains([domain], app=settings.app)
    if settings.transport == "memory":
        from bus import InMemoryTransport

        return InMemoryTransport(topology)
    _check_target(settings, topology)
    from adapters.aws.session import AwsSettings

    aws = AwsSettings(
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        provision=settings.provision,
    )
    transport: Any
    if settings.transport == "sns":
        from adapters.aws.sns_sqs import SnsSqsTransport

        transport = SnsSqsTransport(topology, aws)
    else:
        from adapters.aws.eventbridge import EventBridgeTransport

        transport = EventBridgeTransport(topology, aws)
    resources.push_async_callback(transport.aclose)
    publisher: Publisher = transport
    return publisher


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


def dead_letters_for(settings: LambdaSettings, resources: AsyncExitStack) -> DeadLetters:
    """Where parked records go: SQS on AWS, memory for the in-process transport."""
    if settings.transport == "memory":
        return MemoryDeadLetters()

    async def open_sqs() -> Any:
        from aiobotocore.session import get_session

        client = get_session().create_client(
            "sqs", endpoint_url=settings.endpoint_url, region_name=settings.region
        )
        return await resources.enter_async_context(client)

    return SqsDeadLetters(open_sqs)


def build(env: Mapping[str, str]) -> LambdaApp:
    """The function for the environment's TCTF_DOMAIN, its clients opened on its own loop."""
    settings = LambdaSettings.from_env(env)
    domain = load_domain(settings.domain)
    loop = asyncio.new_event_loop()
    resources = AsyncExitStack()
    publisher = loop.run_until_complete(open_publisher(settings, domain, resources))
    dead_letters = dead_letters_for(settings, resources)
    if isinstance(dead_letters, SqsDeadLetters):
        loop.run_until_complete(dead_letters.open())  # the SDK client, made in the init phase
    return LambdaApp(
        domain,
        publisher,
        dead_letters=dead_letters,
        dead_letter_queue=settings.dead_letter_queue,
        safety_margin_ms=settings.safety_margin_ms,
        loop=loop,
        resources=resources,
    )
