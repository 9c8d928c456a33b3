"""The platform on AWS APIs: `tctf up` provisions the topology, `tctf run --aws` serves it.

Without an endpoint URL `run_aws` starts moto server in a child process on a free loopback
port, and records its URL in `.tctf/endpoint` for `tctf up` and `tctf dlq` to find, so one
command runs every domain on SNS/SQS (or EventBridge) and DynamoDB APIs locally.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from adapters.aws.dead_letters import SqsDeadLetters
from adapters.aws.dynamodb import DynamoTables
from adapters.aws.eventbridge import eventbridge
from adapters.aws.local import MotoProcess
from adapters.aws.outbox_letters import outbox_parking
from adapters.aws.provision import Kind, provision
from adapters.aws.ses import SesMailProvider
from adapters.aws.session import AwsClients, AwsSettings, local_credentials
from adapters.aws.sns_sqs import sns_sqs
from adapters.lambda_.sqs import sqs_batch_handler
from bus.clock import Clock
from bus.domain import Domain
from bus.emf import EmfWriter
from bus.errors import ConfigurationError
from bus.mail import MailProvider, sender_address
from bus.runtime import OutboxParking, TableFactory, TransportFactory, memory_tables
from bus.topology import Topology
from tctf.platform import Platform

#: Where `tctf run --aws` records its embedded moto server's URL, under the working directory.
ENDPOINT_FILE = Path(".tctf") / "endpoint"

_SERVICES: dict[str, tuple[str, ...]] = {
    "sns": ("sqs", "sns"),
    "eventbridge": ("sqs", "events"),
}


def transport_factory(
    transport: str, settings: AwsSettings, metrics: EmfWriter | None = None
) -> TransportFactory:
    """`sns` (SNS fan-out into SQS) or `eventbridge` (EventBridge rules into SQS), each polled
    batch handed to its domain's Lambda SQS handler, as a deployed function receives it;
    with `metrics`, each batch's metrics are written as EMF when it is done."""
    handler = partial(sqs_batch_handler, metrics=metrics)
    if _kind(transport) == "sns":
        return sns_sqs(settings, handler_for=handler)
    return eventbridge(settings, handler_for=handler)


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
    endpoint_url = recorded_endpoint(endpoint_url)
    topology = Topology.from_domains(domains, app=app)
    async with AwsClients(command_settings(endpoint_url), *_SERVICES[kind]) as clients:
        resources = await provision(topology, clients, kind)
    target = resources.topic_arn or f"event bus {resources.event_bus}"
    count = len(topology.tables) + len(topology.idempotency_tables)
    tables = f", {count} table{'' if count == 1 else 's'}" if count else ""
    print(
        f"tctf up: {len(topology.queues)} queues with DLQs{tables}, routed from {target}"
        f" at {endpoint_url or 'AWS'}",
        file=sys.stderr,
    )


def command_settings(endpoint_url: str | None, *, provision: bool = True) -> AwsSettings:
    """How patient a command someone waits on (`tctf up`, `tctf dlq`) is with AWS: one retry
    and a few seconds, then the error in one line, where a poller waits out an outage. It
    makes no long poll, so a call waits 10 s for an answer rather than a long poll's 30."""
    return AwsSettings(
        endpoint_url=endpoint_url,
        provision=provision,
        sdk_max_attempts=2,
        retry_deadline=3.0,
        wait_time_seconds=0,
    )


async def run_aws(
    domains: Sequence[Domain],
    endpoint_url: str | None,
    transport: str,
    port: int | None,
    *,
    host: str = "127.0.0.1",
    app: str = "tctf",
    seed: int | None = None,
    tracer_provider: Any | None = None,
    metrics: EmfWriter | None = None,
    ready: Callable[[Platform], None] | None = None,
) -> None:
    """Serve the domains on AWS APIs until cancelled (`aws_platform`), starting moto server
    in a child process when no endpoint is given.

    The banner is printed, and `ready` (if given) called with the platform, once pollers
    run and HTTP listens.
    """
    kind = _kind(transport)
    with ExitStack() as local:
        embedded = endpoint_url is None
        if endpoint_url is None:
            endpoint_url = local.enter_context(MotoProcess())
            local.enter_context(_recorded(endpoint_url))
        settings = AwsSettings(endpoint_url=endpoint_url, tracer_provider=tracer_provider)
        async with aws_platform(
            domains, settings, kind, app=app, seed=seed, metrics=metrics
        ) as platform:
            names = ", ".join(d.name for d in domains)
            banner = (
                f"tctf: {names} on {'SNS+SQS' if kind == 'sns' else 'EventBridge+SQS'} at "
                f"{endpoint_url}{' (embedded moto server)' if embedded else ''}"
                + (f"; HTTP on http://{host}:{port}" if port else "")
            )

            def serving() -> None:
                print(banner, file=sys.stderr, flush=True)
                if ready:
                    ready(platform)

            await platform.serve(host, port, ready=serving)


@asynccontextmanager
async def aws_platform(
    domains: Sequence[Domain],
    settings: AwsSettings,
    transport: str,
    *,
    app: str = "tctf",
    seed: int | None = None,
    clock: Clock | None = None,
    metrics: EmfWriter | None = None,
) -> AsyncIterator[Platform]:
    """The platform `tctf run --aws` serves, on the endpoint of `settings`, for the block:
    resources provisioned from the topology when it runs, every queue polled and each batch
    handed to its domain's Lambda handler; not yet running (`platform.running()`,
    `platform.serve()`).

    Domains that keep state get a `DynamoTable` each, all on one DynamoDB client closed on
    exit; their outbox relays publish through the AWS transport and park what they never
    can in the domain's outbox DLQ. A domain declaring `Mail` sends through the endpoint's SES.

    `seed` makes the ids the platform gives events and handlers repeat from run to run.
    `clock` is the runtime's: a test's `ManualClock` moves token expiry, TOTP steps and
    the schedules' due times (the runtime's ticker fires what the clock makes due, and so
    does `runtime.settle()`). `metrics` writes the domains' EMF metrics after each polled
    batch (and what routes record, periodically).
    """
    kind = _kind(transport)
    async with AsyncExitStack() as stack:
        mail_provider: MailProvider | None = None
        if any(domain.mail is not None for domain in domains):
            stack.enter_context(_mail_through_ses(settings))
            await _verify_sender(settings)
            mail_provider = SesMailProvider()
        tables: TableFactory = memory_tables
        parking: OutboxParking | None = None
        if any(domain.storage is not None for domain in domains):
            tables = await stack.enter_async_context(DynamoTables(settings))
            # Outbox items that can never be published go to the domain's outbox DLQ,
            # as the stream relay sends them in Lambda.
            clients = await stack.enter_async_context(AwsClients(settings, "sqs"))
            letters = SqsDeadLetters(partial(clients.client, "sqs"))
            dlqs = Topology.from_domains(domains, app=app).outbox_dlqs
            parking = outbox_parking(letters, dlqs)
        yield Platform(
            domains,
            transport=transport_factory(kind, settings, metrics),
            tables=tables,
            outbox_parking=parking,
            app=app,
            seed=seed,
            clock=clock,
            tracer_provider=settings.tracer_provider,
            metrics=metrics,
            mail_provider=mail_provider,
        )


@contextmanager
def _mail_through_ses(settings: AwsSettings) -> Iterator[None]:
    """Point the SDK's SES client at the endpoint for the run's length, as a domain
    declaring `Mail` sends through SES there as production does (unless the environment
    already chose): the endpoint, this run's region and, where the run uses local
    credentials, those."""
    assert settings.endpoint_url is not None
    credentials = local_credentials(settings.endpoint_url)
    chosen = {
        "AWS_ENDPOINT_URL_SESV2": settings.endpoint_url,
        "AWS_DEFAULT_REGION": settings.region,
        **(
            {
                "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            }
            if credentials
            else {}
        ),
    }
    added = [name for name in chosen if name not in os.environ]
    os.environ.update({name: chosen[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


async def _verify_sender(settings: AwsSettings) -> None:
    """Verify the sender on the endpoint's SES, which, as SES does, refuses to send from an
    address it has not verified (`tctf run --aws` talks to an emulator, never to AWS)."""
    from botocore.exceptions import ClientError

    async with AwsClients(settings, "sesv2") as clients:
        try:
            await clients.sesv2.create_email_identity(EmailIdentity=sender_address())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                raise


def recorded_endpoint(endpoint_url: str | None) -> str | None:
    """The endpoint URL given, else the one a running `tctf run --aws` recorded in this
    directory, else None (AWS itself).

    A recorded endpoint must answer: one a killed run left behind is refused, in a line,
    rather than waited on."""
    if endpoint_url is not None:
        return endpoint_url
    recorded = _recorded_url()
    if recorded is not None and not _answers(recorded):
        raise ConfigurationError(
            f"{ENDPOINT_FILE} names {recorded}, where nothing answers: the `tctf run --aws` "
            "that recorded it is gone; start it again, or remove the file (or pass "
            "--endpoint-url)"
        )
    return recorded


def _recorded_url() -> str | None:
    if not ENDPOINT_FILE.exists():
        return None
    return ENDPOINT_FILE.read_text().strip() or None


def _answers(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts a connection at the URL's host and port."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _recorded(endpoint_url: str) -> Iterator[None]:
    """Record the embedded endpoint while it runs; forget it after, unless another run has
    recorded its own since."""
    ENDPOINT_FILE.parent.mkdir(exist_ok=True)
    ENDPOINT_FILE.write_text(endpoint_url + "\n")
    try:
        yield
    finally:
        if _recorded_url() == endpoint_url:
            ENDPOINT_FILE.unlink(missing_ok=True)


def _kind(transport: str) -> Kind:
    if transport == "sns":
        return "sns"
    if transport == "eventbridge":
        return "eventbridge"
    raise ConfigurationError(f"transport must be 'sns' or 'eventbridge', not {transport!r}")
