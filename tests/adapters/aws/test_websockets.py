"""`ApiGatewayConnections`: PostToConnection through the SDK, on the moto server (which
accepts any connection and keeps what was posted), and a GoneException as API Gateway sends
it for a closed connection (moto never answers one: a loopback endpoint speaking the
management API's error shape stands in for it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from adapters.aws.session import AwsSettings
from adapters.aws.websockets import ApiGatewayConnections
from bus.errors import ConnectionGone, PermanentError, TransientError

ACCOUNT = "123456789012"


async def test_a_post_reaches_the_connection_on_moto(moto_endpoint: str) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    settings = AwsSettings(endpoint_url=moto_endpoint)
    async with ApiGatewayConnections(settings, moto_endpoint) as connections:
        await connections.post("conn-moto-1", b'{"type": "message"}')
        await connections.post("conn-moto-1", b"!")
    backend = apigatewaymanagementapi_backends[ACCOUNT][settings.region]
    assert backend.connections["conn-moto-1"].data == b'{"type": "message"}!'


@asynccontextmanager
async def management_api(status: int, error_type: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback endpoint answering every request with `status` and API Gateway's error
    shape; the request lines it got."""
    requests: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head.split(b"\r\n", 1)[0].decode())
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        body = b'{"message": null}'
        writer.write(
            f"HTTP/1.1 {status} Error\r\nx-amzn-errortype: {error_type}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/live", requests


async def test_a_gone_connection_is_told_as_connection_gone() -> None:
    async with management_api(410, "GoneException") as (endpoint, requests):
        settings = AwsSettings(endpoint_url=endpoint)
        async with ApiGatewayConnections(settings, endpoint) as connections:
            with pytest.raises(ConnectionGone) as raised:
                await connections.post("conn-closed", b"hello")
    assert raised.value.connection_id == "conn-closed"
    assert requests == ["POST /live/@connections/conn-closed HTTP/1.1"]


async def test_throttling_is_transient_so_the_delivery_is_retried() -> None:
    async with management_api(429, "LimitExceededException") as (endpoint, _):
        settings = AwsSettings(endpoint_url=endpoint, sdk_max_attempts=1)
        async with ApiGatewayConnections(settings, endpoint) as connections:
            with pytest.raises(TransientError, match="LimitExceededException"):
                await connections.post("conn-1", b"hello")


async def test_a_refusal_no_retry_can_help_parks_the_delivery() -> None:
    async with management_api(403, "ForbiddenException") as (endpoint, _):
        settings = AwsSettings(endpoint_url=endpoint)
        async with ApiGatewayConnections(settings, endpoint) as connections:
            with pytest.raises(PermanentError, match="ForbiddenException"):
                await connections.post("conn-1", b"hello")
