"""The `tctf` command as a user runs it."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
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
    assert "tctf-users" in out and "tctf-messaging-idempotency  messaging" in out


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
        while not any(line.get("event_type") == "SEND_EMAIL" for line in lines):
            lines.append(json.loads(stdout.next(deadline)))
    finally:
        process.terminate()
        process.wait(timeout=10)
    deliveries = [line for line in lines if line.get("logger") == "tctf.delivery"]
    assert [(d["handler"], d["outcome"]) for d in deliveries] == [
        ("messaging.welcome_new_user", "handled"),
        ("messaging.send_email", "handled"),
    ]
    assert {line["correlation_id"] for line in lines} == {"req-42"}


def _error_lines(err: str) -> list[str]:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    return lines


def test_a_port_in_use_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["run", "--port", str(port)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"tctf run: cannot listen on 127.0.0.1:{port}: Address already in use")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--port", "99999"], "tctf run: argument --port: '99999' is not a port"),
        (["run", "--log-level", "nonsense"], "tctf run: argument --log-level: invalid choice"),
        (["dlq", "redrive"], "tctf dlq redrive: the following arguments are required: DOMAIN"),
    ],
)
def test_a_mistaken_argument_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(message)


def test_a_domain_is_a_name_never_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--domain", "users/../messaging"]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == (
        "tctf topology: 'users/../messaging' is not a domain name: name a package under "
        "domains/ (known: messaging, users)"
    )


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a byte is written, as `| head` after its lines
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tctf.cli", "topology"],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


#: The optional dependencies: absent, as with `pip install -e .` alone.
_EXTRAS_MODULES: tuple[str, ...] = ("uvicorn", "boto3", "botocore", "aioboto3", "aiobotocore")
_EXTRAS_MODULES += ("moto", "aws_cdk", "constructs", "jsii")

_BASE_INSTALL = """
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {absent!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from tctf.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _tctf_without(absent: Sequence[str], *argv: str) -> subprocess.CompletedProcess[str]:
    script = _BASE_INSTALL.format(absent=tuple(absent))
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "command", ["", "run", "topology", "up", "dlq", "dlq redrive", "package", "synth"]
)
def test_every_help_works_with_the_base_install_alone(command: str) -> None:
    done = _tctf_without(_EXTRAS_MODULES, *command.split(), "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"usage: tctf {command}".rstrip())


@pytest.mark.parametrize(
    ("argv", "installed", "line"),
    [
        (
            ["run"],
            (),
            "tctf run: needs the 'local' extra (uvicorn is not installed): "
            "pip install -e '.[local]'",
        ),
        (["run", "--aws"], ("uvicorn",), "tctf run --aws: needs the 'aws-local' extra"),
        (
            ["run", "--aws"],
            ("uvicorn", "boto3", "botocore", "aioboto3", "aiobotocore"),
            "tctf run --aws: needs the 'aws-local' extra (moto is not installed)",
        ),
        (["up"], ("uvicorn",), "tctf up: needs the 'aws' extra"),
        (["dlq"], ("uvicorn",), "tctf dlq: needs the 'aws' extra"),
        (
            ["synth", "--no-deps", "--layer", "arn:aws:lambda:us-east-1:1:layer:x:1"],
            ("boto3",),
            "tctf synth: needs the 'cdk' extra",
        ),
    ],
)
def test_a_command_without_its_extra_names_it_in_one_line(
    argv: list[str], installed: tuple[str, ...], line: str, tmp_path: Path
) -> None:
    absent = [name for name in _EXTRAS_MODULES if name not in installed]
    out = ["-o", str(tmp_path)] if argv[0] == "synth" else []
    done = _tctf_without(absent, *argv, *out)
    assert done.returncode == 2
    (error,) = _error_lines(done.stderr)
    assert error.startswith(line)


def test_up_counts_its_tables_in_words(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--endpoint-url", moto_endpoint]) == 0
    (line,) = _error_lines(capsys.readouterr().err)
    assert "tctf up: 2 queues with DLQs, 2 tables, routed from arn:aws:sns:" in line
