"""Connection settings and the clients one transport uses: one session, one client a service.

Clients are opened in an async context and closed with it; nothing here runs at import time
beyond importing the SDK, and the bus never imports this module.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig


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

    One aioboto3 session; one client per service, closed together on exit.
    """

    def __init__(self, settings: AwsSettings, *services: str) -> None:
        self.settings = settings
        self.services = services
        self._clients: dict[str, Any] = {}
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> AwsClients:
        settings = self.settings
        session = aioboto3.Session(region_name=settings.region)
        # The read timeout must outlast a long poll, or every empty receive is an error.
        config = AioConfig(
            retries={"mode": "standard", "max_attempts": settings.sdk_max_attempts},
            connect_timeout=5,
            read_timeout=settings.wait_time_seconds + 10,
        )
        async with AsyncExitStack() as stack:
            for service in self.services:
                self._clients[service] = await stack.enter_async_context(
                    session.client(service, endpoint_url=settings.endpoint_url, config=config)
                )
            self._stack = stack.pop_all()
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

    def __getattr__(self, service: str) -> Any:
        clients = self.__dict__.get("_clients", {})
        if service in clients:
            return clients[service]
        raise AttributeError(f"no {service} client open (opened: {', '.join(clients)})")
