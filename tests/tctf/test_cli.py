"""The `tctf` command as a user runs it."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from tctf.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_topology_prints_every_domain_queue_and_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology"]) == 0
    out = capsys.readouterr().out
    assert "tctf-messaging-events-dlq" in out and "messaging.welcome_new_user" in out
    assert "POST    /users            users.sign_up" in out
    assert "tctf-users  users" in out


def test_topology_json_is_the_same_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--json", "--domain", "messaging"]) == 0
    topology = json.loads(capsys.readouterr().out)
    assert topology["domains"] == ["messaging"]
    assert {q["name"] for q in topology["queues"]} == {
        "tctf-messaging-events",
        "tctf-messaging-tasks",
    }


def test_an_unknown_domain_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--domain", "nope"]) == 2
    assert "no domain 'nope': expected domains/nope/app.py" in capsys.readouterr().err


class Lines:
    """Lines of a child's stream, read by a thread so a test can wait with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)

    def next(self, deadline: float) -> str:
        try:
            return self._lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            pytest.fail("tctf run printed nothing more before the deadline")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tctf_run_serves_routes_and_logs_each_delivery_with_its_correlation_id() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tctf.cli", "run", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        stdout, stderr = Lines(process.stdout), Lines(process.stderr)
        banner = stderr.next(deadline=time.monotonic() + 30)
        assert f"HTTP on http://127.0.0.1:{port}" in banner
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/users",
            data=json.dumps({"email": "ada@example.com", "name": "Ada"}).encode(),
            headers={"x-correlation-id": "req-42"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # listening by now
            assert response.status == 201
        lines: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while not any(line.get("type") == "SEND_EMAIL" for line in lines):
            lines.append(json.loads(stdout.next(deadline)))
    finally:
        process.terminate()
        process.wait(timeout=10)
    deliveries = [line for line in lines if line["logger"] == "tctf.delivery"]
    assert [(d["handler"], d["outcome"]) for d in deliveries] == [
        ("messaging.welcome_new_user", "handled"),
        ("messaging.send_email", "handled"),
    ]
    assert {line["correlation_id"] for line in lines} == {"req-42"}
