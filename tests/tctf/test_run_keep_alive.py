"""`tctf run`'s HTTP socket answers keep-alive requests at once: with Nagle's algorithm on,
each answer's second write waited for the client's delayed ACK (about 40 ms a request)."""

from __future__ import annotations

import http.client
import socket
import statistics
import time

import anyio

from domains.users.app import domain as users
from tctf.platform import Platform, listening_socket


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_connection_the_listener_accepts_sends_without_delay() -> None:
    with listening_socket("127.0.0.1", 0) as listener:
        client = socket.create_connection(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def _keep_alive_timings(port: int, requests: int) -> list[float]:
    """Seconds each request took, all on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    timings: list[float] = []
    try:
        for _ in range(requests):
            started = time.perf_counter()
            connection.request("GET", "/nowhere")
            answer = connection.getresponse()
            answer.read()
            timings.append(time.perf_counter() - started)
            assert answer.status == 404 and not answer.will_close
    finally:
        connection.close()
    return timings


async def test_keep_alive_requests_to_tctf_run_are_answered_well_under_the_delayed_ack() -> None:
    port = _free_port()
    platform = Platform([users])
    served = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: platform.serve(port=port, ready=served.set))
        with anyio.fail_after(30):
            await served.wait()
            timings = await anyio.to_thread.run_sync(_keep_alive_timings, port, 6)
        group.cancel_scope.cancel()
    assert statistics.median(timings[1:]) < 0.020, timings
