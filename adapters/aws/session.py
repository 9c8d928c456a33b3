"""Connection settings and the clients one transport uses: one session, one client a service.

Clients are opened in an async context and closed with it. The SDK is imported when the
first client is opened, and only the one `AwsSettings.sdk` names: aiobotocore (async HTTP
over aiohttp) or botocore (each call run in a worker thread). The bus never imports this
module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

#: Keys for an endpoint on loopback when none are configured: moto and LocalStack accept any,
#: and these say plainly that they are not an account's.
LOCAL_CREDENTIALS = {
    "aws_access_key_id": "tctf-local-fake-key",
    "aws_secret_access_key": "tctf-local-fake-secret",
}

#: Which SDK makes the clients; see `AwsSettings.sdk`.
Sdk = Literal["aiobotocore", "botocore"]


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Where the AWS APIs are and how patient to be with them."""

    #: An AWS-compatible endpoint (moto server, LocalStack); None: the real AWS endpoints.
    endpoint_url: str | None = None
    #: Region of every resource; None: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
    region_name: str | None = None
    #: Create missing resources from the topology on first use (idempotent); False: only
    #: look them up, as in an account provisioned by infrastructure code.
    provision: bool = True
    #: SQS long-poll wait of each ReceiveMessage, seconds (0 to 20; AWS's maximum is 20).
    wait_time_seconds: int = 20
    #: Attempts botocore makes per API call (its standard retry mode) before ours see the error.
    sdk_max_attempts: int = 3
    #: Seconds a batch call keeps retrying failed entries and unreachable endpoints.
    retry_deadline: float = 60.0
    #: First backoff between retries, seconds; doubled on each retry up to `max_backoff`.
    backoff: float = 0.05
    #: Longest backoff between two retries, seconds.
    max_backoff: float = 2.0
    #: Seconds `settle()` waits for every queue to empty before raising `NotSettled`.
    settle_timeout: float = 120.0
    #: Seconds between two reads of the queues' message counts in `settle()`.
    settle_interval: float = 0.1
    #: The SDK the clients are made with. "aiobotocore": calls are async HTTP requests, for
    #: long polls and many concurrent calls (pollers, local runs). "botocore": each call runs
    #: in a worker thread, for a process making few calls at a time (a Lambda function):
    #: it does not import aiohttp and aiobotocore, about 100 ms of a cold start.
    sdk: Sdk = "aiobotocore"
    #: An OpenTelemetry tracer provider: a client span per API call made inside a trace
    #: (`adapters.aws.client_spans`). None: no spans, OpenTelemetry not imported.
    tracer_provider: Any | None = None

    @property
    def region(self) -> str:
        return (
            self.region_name
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )


class AwsClients:
    """`async with AwsClients(settings, "sqs", "sns") as clients:` then `clients.sqs`.

    One SDK session; one client per service, closed together on exit. `await
    clients.client("events")` opens a further service's client on demand.

    `max_pool_connections` is each client's connection pool (the SDK's default is 10): a
    call waits for a free connection, so a client shared by long polls needs one per poll
    beside those its other calls use.
    """

    def __init__(
        self, settings: AwsSettings, *services: str, max_pool_connections: int | None = None
    ) -> None:
        self.settings = settings
        self.services = services
        self.max_pool_connections = max_pool_connections
        self._clients: dict[str, Any] = {}
        self._stack: AsyncExitStack | None = None
        self._session: Any = None
        self._config: Any = None
        self._credentials: dict[str, str] | None = None

    async def __aenter__(self) -> AwsClients:
        try:
            for service in self.services:
                await self.client(service)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._clients.clear()
        if stack is not None:
            await stack.aclose()

    async def client(self, service: str) -> Any:
        """The service's client, opened on first use and kept until exit."""
        client = self._clients.get(service)
        if client is None:
            if self._stack is None:
                self._stack = AsyncExitStack()
            if self.settings.sdk == "botocore":
                made: Any = ThreadedClient(self._botocore_client(service))
            else:
                made = self._aiobotocore_client(service)
            client = self._clients[service] = await self._stack.enter_async_context(made)
            if self.settings.tracer_provider is not None:
                from adapters.aws.client_spans import instrument_client

                instrument_client(client, self.settings.tracer_provider)
        return client

    def _aiobotocore_client(self, service: str) -> Any:
        settings = self.settings
        if self._session is None:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session

            self._session = get_session()
            self._config = AioConfig(**_config_options(settings, self.max_pool_connections))
        return self._session.create_client(
            service,
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=self._config,
            **self._local_credentials(),
        )

    def _botocore_client(self, service: str) -> Any:
        settings = self.settings
        if self._config is None:
            from botocore.config import Config

            self._config = Config(**_config_options(settings, self.max_pool_connections))
        return _botocore_session().create_client(
            service,
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=self._config,
            **self._local_credentials(),
        )

    def _local_credentials(self) -> dict[str, str]:
        if self._credentials is None:
            self._credentials = local_credentials(self.settings.endpoint_url)
        return self._credentials

    def __getattr__(self, service: str) -> Any:
        clients = self.__dict__.get("_clients", {})
        if service in clients:
            return clients[service]
        raise AttributeError(f"no {service} client open (opened: {', '.join(clients)})")


def local_credentials(endpoint_url: str | None) -> dict[str, str]:
    """`LOCAL_CREDENTIALS` for an endpoint on loopback when none are configured; otherwise
    nothing, and the SDK's credential chain decides as it always does.

    Only what a user configures counts (environment, profiles, credential files and
    processes): the container and EC2 metadata services serve AWS's own endpoints, and
    asking them where there are none takes seconds.
    """
    if not is_loopback(endpoint_url):
        return {}
    from botocore.credentials import create_credential_resolver
    from botocore.session import Session

    resolver = create_credential_resolver(Session())
    for metadata_provider in ("container-role", "iam-role"):
        resolver.remove(metadata_provider)
    return {} if resolver.load_credentials() is not None else dict(LOCAL_CREDENTIALS)


def is_loopback(endpoint_url: str | None) -> bool:
    """The endpoint is on this machine: `localhost`, 127.0.0.0/8 or ::1."""
    host = urlsplit(endpoint_url).hostname if endpoint_url else None
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config_options(settings: AwsSettings, max_pool_connections: int | None) -> dict[str, Any]:
    # The read timeout must outlast a long poll, or every empty receive is an error.
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": settings.sdk_max_attempts},
        "connect_timeout": 5,
        "read_timeout": settings.wait_time_seconds + 10,
    }
    if max_pool_connections is not None:
        options["max_pool_connections"] = max_pool_connections
    return options


_BOTOCORE_SESSION: Any = None


def _botocore_session() -> Any:
    """One botocore session for the process: its loaded models are shared by every client."""
    global _BOTOCORE_SESSION
    if _BOTOCORE_SESSION is None:
        from botocore.session import get_session

        _BOTOCORE_SESSION = get_session()
    return _BOTOCORE_SESSION


class ThreadedClient:
    """A botocore client whose API calls are awaited: each runs in a worker thread.

    It answers like an aiobotocore client (`await client.send_message_batch(...)`, `async
    for page in client.get_paginator(name).paginate(...)`); attributes such as `meta` and
    `exceptions` are the botocore client's own. A cancelled call is abandoned to finish in
    its thread, as a cancelled aiobotocore request may still reach the service.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._calls: dict[str, Any] = {}

    async def __aenter__(self) -> ThreadedClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._client.close()

    def get_paginator(self, operation: str) -> ThreadedPaginator:
        return ThreadedPaginator(self._client.get_paginator(operation))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attribute = getattr(self._client, name)
        if not callable(attribute) or name not in self._client.meta.method_to_api_mapping:
            return attribute
        call = self._calls.get(name)
        if call is None:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await _in_thread(partial(attribute, *args, **kwargs))

            call.__name__ = call.__qualname__ = name
            self._calls[name] = call
        return call


class ThreadedPaginator:
    """A botocore paginator iterated with `async for`, each page fetched in a worker thread."""

    def __init__(self, paginator: Any) -> None:
        self._paginator = paginator

    async def _pages(self, kwargs: dict[str, Any]) -> Any:
        pages = iter(self._paginator.paginate(**kwargs))  # lazy: no call made yet
        done = object()
        while (page := await _in_thread(partial(next, pages, done))) is not done:
            yield page

    def paginate(self, **kwargs: Any) -> Any:
        return self._pages(kwargs)


async def _in_thread(call: Any) -> Any:
    """Run a blocking botocore call in the loop's default executor. Cancelling the awaiting
    task abandons the call to finish in its thread; context variables go with it."""
    return await asyncio.to_thread(call)
