"""`tctf run`'s server (uvicorn, its `websockets` implementation) serves the domains'
WebSocket routes: a connection without a valid access token is closed with 4401 and its
reason, over the wire as a browser would see it."""

from __future__ import annotations

import socket

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from domains.auth_core.app import domain as auth_core
from domains.user_message.app import domain as user_message
from tctf.platform import Platform


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_tctf_run_closes_a_websocket_without_a_valid_token_with_4401() -> None:
    port = _free_port()
    platform = Platform([auth_core, user_message])
    served = anyio.Event()
    codes: list[tuple[int, str]] = []
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: platform.serve(port=port, ready=served.set))
        with anyio.fail_after(20):
            await served.wait()
            for query in ("", "?token=not-a-jwt"):
                url = f"ws://127.0.0.1:{port}/messages/live{query}"
                async with connect(url) as websocket:
                    with pytest.raises(ConnectionClosed) as closed:
                        await websocket.recv()
                assert closed.value.rcvd is not None
                codes.append((closed.value.rcvd.code, closed.value.rcvd.reason))
            with pytest.raises((InvalidStatus, ConnectionClosed)):
                async with connect(f"ws://127.0.0.1:{port}/nowhere") as websocket:
                    await websocket.recv()
        group.cancel_scope.cancel()
    assert codes == [(4401, "a valid access token is required")] * 2
