"""`tctf run --aws` as a user runs it: its options, its embedded endpoint, its credentials and
concurrent sign-ups."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from adapters.aws.session import LOCAL_CREDENTIALS, AwsClients, AwsSettings, local_credentials
from bus.ids import IdGenerator
from tctf.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _without_credentials(home: Path) -> dict[str, str]:
    """The environment of a machine where no AWS credentials were ever configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class Lines:
    """A child's stream, read by a thread: line by line with a deadline, or all at its end."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._seen: list[str] = []
        self._ended = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._seen.append(line)
            self._lines.put(line)
        self._ended.set()

    def next(self, deadline: float) -> str:
        try:
            return self._lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            pytest.fail("tctf run --aws printed nothing more before the deadline")

    def everything(self) -> str:
        """All the stream held, once it has ended (the process exited)."""
        assert self._ended.wait(15), "the stream did not end"
        return "".join(self._seen)


class RunAws:
    """A `tctf run --aws` process, its stdout's JSON lines and its stderr's lines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process = process
        self.stdout, self.stderr = Lines(process.stdout), Lines(process.stderr)
        self.log: list[dict[str, object]] = []

    def banner(self) -> str:
        deadline = time.monotonic() + 60
        while not (line := self.stderr.next(deadline)).startswith("tctf:"):
            pass
        return line

    def wait_for_emails(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while self.emails_handled() < count:
            self.log.append(json.loads(self.stdout.next(deadline)))

    def emails_handled(self) -> int:
        return sum(
            1
            for line in self.log
            if line.get("event_type") == "SEND_EMAIL" and line["outcome"] == "handled"
        )

    def all_of_stderr(self) -> str:
        return self.stderr.everything()


@contextmanager
def run_aws(*options: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[RunAws]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tctf.cli", "run", "--aws", *options],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield RunAws(process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sign_up(host: str, port: int, n: int, correlation_id: str | None = None) -> dict[str, str]:
    request = urllib.request.Request(
        f"http://{host}:{port}/users",
        data=json.dumps({"email": f"user{n}@example.com", "name": f"User {n}"}).encode(),
        headers={"x-correlation-id": correlation_id} if correlation_id else {},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        answer: dict[str, str] = json.loads(response.read())
        return answer


def test_run_aws_listens_on_the_given_host_when_its_banner_says_so_and_honours_trace_and_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = "127.0.0.2", _free_port("127.0.0.2")
    options = ("--host", host, "--port", str(port), "--trace", "--seed", "7")
    with run_aws(*options, cwd=tmp_path) as run:
        banner = run.banner()
        assert f"HTTP on http://{host}:{port}" in banner
        socket.create_connection((host, port), timeout=5).close()  # no retry: listening now

        user = sign_up(host, port, 1, correlation_id="aws-signup-1")
        run.wait_for_emails(1)
        seeded = IdGenerator(7)
        assert user["user_id"] in {seeded() for _ in range(20)}
        run.process.send_signal(signal.SIGINT)
        run.process.wait(timeout=15)
        stderr = run.all_of_stderr()
    assert '"name": "messaging_consumers.deliver process"' in stderr  # the console span exporter
    # The span file: one trace from the request across SQS, with the SDK calls inside it.
    assert main(["trace", "aws-signup-1", "--spans", str(tmp_path / ".tctf/spans.jsonl")]) == 0
    steps = [line.split("  [")[0].lstrip("│├└─ ") for line in capsys.readouterr().out.splitlines()]
    assert steps[0].startswith("trace ") and steps[0].endswith("(correlation id aws-signup-1)")
    assert [s for s in steps if s.startswith("trace ")][1:] == [
        s for s in steps if s.endswith("(linked to it)")
    ]
    assert {
        "POST /users",
        "DynamoDB.TransactWriteItems",
        "USER_CREATED publish",
        "messaging_consumers.welcome_new_user process",
        "SEND_EMAIL send",
        "SQS.SendMessageBatch",
        "messaging_consumers.deliver process",
        "users outbox relay publish",  # linked: the relay's own trace, with its SNS call
        "SNS.PublishBatch",
    } <= set(steps)


def test_tctf_dlq_finds_the_embedded_endpoint_and_needs_no_credentials(tmp_path: Path) -> None:
    env = _without_credentials(tmp_path)
    with run_aws("--port", "0", cwd=tmp_path, env=env) as run:
        banner = run.banner()
        recorded = (tmp_path / ".tctf" / "endpoint").read_text().strip()
        assert f"at {recorded} (embedded moto server)" in banner
        dlq = subprocess.run(
            [sys.executable, "-m", "tctf.cli", "dlq", "--domain", "messaging_consumers"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert dlq.returncode == 0, dlq.stderr
        assert (
            "tctf-messaging_consumers-events-dlq (messaging_consumers events): 0 records"
            in dlq.stdout
        )
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(timeout=15) == 130  # interrupted, as a shell reports it
    assert not (tmp_path / ".tctf" / "endpoint").exists()


def test_fifty_concurrent_sign_ups_all_succeed_and_every_email_is_handled(tmp_path: Path) -> None:
    port = _free_port()
    with run_aws("--port", str(port), cwd=tmp_path) as run:
        run.banner()
        with ThreadPoolExecutor(8) as pool:
            users = list(pool.map(lambda n: sign_up("127.0.0.1", port, n), range(50)))
        assert len({user["user_id"] for user in users}) == 50
        run.wait_for_emails(50)
        run.process.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert run.process.wait(timeout=15) == 130  # interrupted, as a shell reports it
        assert time.monotonic() - started < 5
        stderr = run.all_of_stderr()
    assert "Traceback" not in stderr
    assert {line["outcome"] for line in run.log if "outcome" in line} == {"handled"}


async def test_a_loopback_endpoint_takes_fake_keys_when_none_are_configured(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _without_credentials(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in [n for n in os.environ if n.startswith("AWS_ACCESS") or n.startswith("AWS_SECRET")]:
        monkeypatch.delenv(name)
    assert local_credentials(moto_endpoint) == LOCAL_CREDENTIALS
    async with AwsClients(AwsSettings(endpoint_url=moto_endpoint), "sqs") as clients:
        listed = await clients.sqs.list_queues()  # NoCredentialsError without the fake keys
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_configured_credentials_and_remote_endpoints_keep_the_sdk_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    assert local_credentials("http://127.0.0.1:5000") == {}
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert local_credentials("https://sqs.us-east-1.amazonaws.com") == {}
    assert local_credentials(None) == {}


def test_a_terminated_run_forgets_its_endpoint_as_an_interrupted_one_does(tmp_path: Path) -> None:
    with run_aws("--port", "0", cwd=tmp_path, env=_without_credentials(tmp_path)) as run:
        run.banner()
        assert (tmp_path / ".tctf" / "endpoint").exists()
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=15) == 128 + signal.SIGTERM
        assert "Traceback" not in run.all_of_stderr()
    assert not (tmp_path / ".tctf" / "endpoint").exists()


def test_an_endpoint_file_nothing_answers_at_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = f"http://127.0.0.1:{_free_port()}"
    (tmp_path / ".tctf").mkdir()
    (tmp_path / ".tctf" / "endpoint").write_text(stale + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["dlq"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"tctf dlq: .tctf/endpoint names {stale}, where nothing answers")
