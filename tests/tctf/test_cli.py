"""The `tctf` command as a user runs it."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pyotp
import pytest

from bus.topology import Topology
from tctf.cli import main
from tctf.config import load_domains
from tctf.synth import argument_parser as synth_arguments

ROOT = Path(__file__).resolve().parents[2]


def test_topology_prints_every_domain_queue_and_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology"]) == 0
    out = capsys.readouterr().out
    assert (
        "tctf-messaging_consumers-events-dlq" in out
        and "messaging_consumers.welcome_new_user" in out
    )
    assert re.search(r"\nPOST +/users +users\.sign_up +public\n", out)
    assert re.search(r"\nGET +/users/\{user_id\} +users\.get_user +signed in\n", out)
    assert "tctf-users" in out
    assert re.search(r"\ntctf-messaging_consumers +messaging_consumers +outbox ", out)


def test_topology_json_is_the_same_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--json", "--domain", "messaging_consumers"]) == 0
    topology = json.loads(capsys.readouterr().out)
    assert topology["domains"] == ["messaging_consumers"]
    assert {q["name"] for q in topology["queues"]} == {
        "tctf-messaging_consumers-events",
        "tctf-messaging_consumers-tasks",
    }


def test_openapi_writes_one_domains_document_with_the_base_install(tmp_path: Path) -> None:
    output = tmp_path / "users.json"
    done = _tctf_without(_EXTRAS_MODULES, "openapi", "--domain", "users", "-o", str(output))
    assert (done.returncode, done.stderr) == (0, "")
    document = json.loads(output.read_text())
    assert document["info"]["title"] == "users"
    assert set(document["paths"]) == {"/users", "/users/{user_id}"}


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


def test_tctf_run_signs_up_mails_the_set_password_link_and_signs_in_with_mfa(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sign-up, the set-password e-mail (read from the local mailbox by `tctf mail`, never
    the log), the password set with its link, sign-in, MFA turned on and the two-step
    sign-in it then takes: each request's deliveries under its correlation id, and the
    sign-up's trace drawn by `tctf trace`."""
    port = _free_port()
    spans = tmp_path / "spans.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "tctf.cli", "run", "--port", str(port), "--spans", str(spans)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def post(
        path: str, body: dict[str, str] | None, correlation_id: str, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"x-correlation-id": correlation_id}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=b"" if body is None else json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 201, 204), response.status
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer

    lines: list[dict[str, Any]] = []
    try:
        assert process.stderr is not None and process.stdout is not None
        stdout, stderr = Lines(process.stdout), Lines(process.stderr)
        banner = stderr.next(deadline=time.monotonic() + 30)
        assert f"HTTP on http://127.0.0.1:{port}" in banner
        post("/users", {"email": "ada@example.com", "name": "Ada"}, "req-signup")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=10) as doc:
            assert "/users/{user_id}" in json.load(doc)["paths"]
        deadline = time.monotonic() + 30
        while sum(line.get("handler") == "messaging_consumers.deliver" for line in lines) < 2:
            lines.append(json.loads(stdout.next(deadline)))
        url = f"127.0.0.1:{port}"  # host:port, the form `tctf mail --help` shows
        assert main(["mail", "--to", "ada@example.com", "--url", url, "--json"]) == 0
        letters = json.loads(capsys.readouterr().out)
        [letter] = [x for x in letters if "#token=" in x["text"]]
        assert f"http://127.0.0.1:{port}/set-password#token=" in letter["text"]
        token = letter["text"].split("#token=", 1)[1].split()[0]
        post("/auth/password/set", {"token": token, "password": "a long passphrase"}, "req-set")
        session = post(
            "/auth/sessions",
            {"email": "ada@example.com", "password": "a long passphrase"},
            "req-in",
        )
        enrolment = post("/auth/mfa/totp", None, "req-mfa", session["access_token"])
        totp = pyotp.TOTP(enrolment["secret"])
        post(
            "/auth/mfa/totp/confirmation",
            {"code": totp.now()},
            "req-mfa-on",
            session["access_token"],
        )
        while not any(line.get("handler") == "auth_core.require_second_factor" for line in lines):
            lines.append(json.loads(stdout.next(deadline)))
        credentials = {"email": "ada@example.com", "password": "a long passphrase"}
        challenge = post("/auth/sessions", credentials, "req-in-mfa")
        # the confirmation spent this step's code: the next step's is within the drift allowed
        code = totp.at(time.time() + totp.interval)
        second = post(
            "/auth/sessions/mfa",
            {"mfa_challenge": challenge["mfa_challenge"], "code": code},
            "req-in-mfa-code",
        )
        while sum(line.get("message") == "signed in" for line in lines) < 2:
            lines.append(json.loads(stdout.next(deadline)))
    finally:
        process.terminate()
        process.wait(timeout=10)
    handled = sorted(
        (line["correlation_id"], line["handler"])
        for line in lines
        if line["logger"] == "tctf.delivery" and line["outcome"] == "handled"
    )
    assert [h for h in handled if h[0] == "req-signup"] == [
        ("req-signup", "achievements.know_user"),
        ("req-signup", "auth_admin.list_new_user"),
        ("req-signup", "auth_password.invite_to_set_password"),
        ("req-signup", "billing.open_customer"),
        ("req-signup", "communication.count_sent"),
        ("req-signup", "communication.count_sent"),
        ("req-signup", "communication.project_new_user"),
        ("req-signup", "messaging_consumers.deliver"),
        ("req-signup", "messaging_consumers.deliver"),
        ("req-signup", "messaging_consumers.welcome_new_user"),
        ("req-signup", "search.index_new_profile"),
        ("req-signup", "social.project_user_created"),
    ]
    sent = [line for line in lines if line.get("message") == "email sent"]
    assert sorted(line["template"] for line in sent) == ["set-password", "welcome"]
    signed_in = [line["correlation_id"] for line in lines if line.get("message") == "signed in"]
    assert signed_in == ["req-in", "req-in-mfa-code"]
    assert "access_token" not in challenge and second["token_type"] == "Bearer"
    assert ("req-mfa-on", "auth_core.require_second_factor") in handled
    assert enrolment["secret"] not in json.dumps(lines)
    assert session["token_type"] == "Bearer" and letter["subject"] == "Choose your password"
    assert token not in json.dumps(lines) and session["refresh_token"] not in json.dumps(lines)
    assert main(["trace", "req-signup", "--spans", str(spans)]) == 0
    steps = [line.split("  [")[0].lstrip("│├└─ ") for line in capsys.readouterr().out.splitlines()]
    assert steps[1:3] == ["POST /users", "USER_CREATED publish"]
    assert {
        "messaging_consumers.welcome_new_user process",
        "auth_password.invite_to_set_password process",
        "SEND_EMAIL send",
        "messaging_consumers.deliver process",
        "EMAIL_SENT publish",
    } <= set(steps)


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
        (
            ["run", "--cors-origin", "https://app.example.org/"],
            "tctf run: argument --cors-origin: 'https://app.example.org/': an origin is a scheme",
        ),
        (["run", "--cors-origin", "*"], "tctf run: argument --cors-origin: '*': name each"),
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


def test_cors_origins_are_refused_with_aws_until_its_server_serves_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--aws", "--cors-origin", "https://app.example.org", "--port", "0"]
    assert main(argv) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert (
        line == "tctf run --aws: --cors-origin is served on the in-memory transport only (no --aws)"
    )


def test_a_domain_is_a_name_never_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--domain", "users/../messaging"]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    known = ", ".join(sorted(app.parent.name for app in (ROOT / "domains").glob("*/app.py")))
    assert "auth_core, " in known  # the list names domains with an app, not a fixed set
    assert line == (
        "tctf topology: 'users/../messaging' is not a domain name: name a package under "
        f"domains/ (known: {known})"
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
    "command",
    [
        "",
        "run",
        "topology",
        "openapi",
        "events",
        "up",
        "dlq",
        "dlq redrive",
        "trace",
        "logs",
        "package",
        "synth",
        "affected",
        "pipelines",
    ],
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
    topology = Topology.from_domains(load_domains(), app="tctf")
    queues, tables = len(topology.queues), len(topology.tables) + len(topology.idempotency_tables)
    assert queues >= 5 and tables >= 4  # several of each: the words are plural
    assert main(["up", "--endpoint-url", moto_endpoint]) == 0
    (line,) = _error_lines(capsys.readouterr().err)
    assert f"tctf up: {queues} queues with DLQs, {tables} tables, routed from arn:aws:sns:" in line


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "127.0.0.1:1", "localhost:1"])
def test_tctf_mail_with_no_run_answering_says_so_in_one_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mail", "--to", "ada@example.com", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tctf mail: nothing answers at {url}")
    assert "unknown url type" not in err and len(err.strip().splitlines()) == 1


def test_tctf_mail_refuses_an_address_it_cannot_read_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["mail", "--to", "ada@example.com", "--url", "ftp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tctf mail: --url")
    assert len(err.strip().splitlines()) == 1


def _tctf(*argv: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`tctf` in a child, in `cwd`, on a machine where no AWS credentials were configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(cwd),
        AWS_CONFIG_FILE=str(cwd / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(cwd / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        [sys.executable, "-m", "tctf.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["dlq"], "tctf dlq: no AWS credentials found"),
        (["run", "--endpoint-url", "http://x:1", "--port", "0"], "tctf run --aws: no AWS cred"),
    ],
)
def test_no_aws_credentials_is_one_line(argv: list[str], line: str, tmp_path: Path) -> None:
    done = _tctf(*argv, cwd=tmp_path)
    assert done.returncode == 2
    (error,) = _error_lines(done.stderr)
    assert error.startswith(line)


def test_an_endpoint_that_does_not_answer_is_one_line_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    done = _tctf("dlq", "--endpoint-url", "http://127.0.0.1:1", cwd=tmp_path)
    assert time.monotonic() - started < 15
    assert done.returncode == 2
    (error,) = _error_lines(done.stderr)
    assert error.startswith("tctf dlq: cannot reach the AWS endpoint")
    assert "http://127.0.0.1:1" in error


def test_up_on_an_endpoint_that_never_answers_is_one_line_soon(tmp_path: Path) -> None:
    # What a stopped `tctf run --aws` can leave: the port accepts, nothing answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        done = _tctf("up", "--endpoint-url", url, cwd=tmp_path, timeout=180)
        waited = time.monotonic() - started
    assert waited < 60  # a long poll's read timeout, three attempts: two minutes
    assert done.returncode == 2
    (error,) = _error_lines(done.stderr)
    assert error.startswith("tctf up: cannot reach the AWS endpoint") and url in error


@pytest.mark.parametrize("interval", ["-1", "0", "nan"])
def test_a_metrics_interval_must_be_positive(
    interval: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", f"--metrics-interval={interval}", "--port", "0"])
    assert exited.value.code == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith("tctf run: argument --metrics-interval: ")
    assert "more than 0 seconds" in line


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("run", "--transport"),
        ("up", "--transport"),
        ("dlq", "--transport"),
        ("logs", "--correlation-id"),
        ("trace", "CORRELATION_ID"),
    ],
)
def test_every_option_says_what_it_does(
    command: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    usage = capsys.readouterr().out
    described = re.search(rf"^  {re.escape(option)}\b[^\n]*(\n {{6,}}\S[^\n]*)*", usage, re.M)
    assert described is not None, usage
    words = described.group().split()
    assert len(words) > 3, f"{option} of tctf {command} has no help text: {described.group()!r}"


def test_every_synth_option_says_what_it_does() -> None:
    options = [action for action in synth_arguments()._actions if action.option_strings]
    undescribed = [
        "/".join(action.option_strings)
        for action in options
        if len((action.help or "").split()) < 2
    ]
    assert len(options) > 5 and undescribed == []
