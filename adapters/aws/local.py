"""A local AWS-compatible endpoint: moto server on a loopback port, in a child process or in
this one, and the patches that make moto behave as AWS does under concurrent calls.

`tctf run --aws` without `--endpoint-url` starts a `MotoProcess`, so moto's GIL-bound work
and its memory are not the platform's. The outage test stops and starts a `LocalEndpoint`'s
HTTP listener: moto keeps its state in the process, so resources and messages outlive a
stop, as they would outlive a network outage on AWS.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
from typing import IO, Any

from adapters.aws.errors import LocalEndpointError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoProcess:
    """`with MotoProcess() as url:` moto server in a child process on a free loopback port.

    moto serves each request in a thread of its own, and glibc gives threads their own
    malloc arenas, each keeping what it freed: two arenas keep its memory near what it holds.
    The child lives in its own session, so a Ctrl-C meant for the platform does not stop it
    under the platform's last calls; it exits when `stop()` closes its stdin, or when this
    process dies and the pipe closes with it.
    """

    #: Seconds `stop()` waits for the child to exit before killing it.
    stop_timeout: float = 5.0

    def __init__(self) -> None:
        self.url: str | None = None
        self._child: subprocess.Popen[str] | None = None

    def start(self) -> str:
        if importlib.util.find_spec("moto") is None:  # the child needs it, not this process
            raise ModuleNotFoundError("No module named 'moto'", name="moto")
        child = self._child = subprocess.Popen(
            [sys.executable, "-m", "adapters.aws.local"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "MALLOC_ARENA_MAX": "2"},
        )
        assert child.stdout is not None
        announced = child.stdout.readline().strip()  # the child's first line is its URL
        if not announced.startswith("http://"):
            self.stop()
            raise LocalEndpointError(
                f"moto server did not start (exit code {child.returncode}); install it with "
                "pip install -e '.[aws-local]', or pass --endpoint-url of a running one"
            )
        self.url = announced
        return announced

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalEndpoint:
    """`with LocalEndpoint() as url:` moto server in this process; `stop()` and `start()`
    again keep the same port, and moto's state."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            os.environ.setdefault(name, value)
        teach_moto_or_in_message_body()
        serialise_moto_dynamodb()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self.url

    def stop(self) -> None:
        """Stop listening: connections are refused until `start()`; moto's state stays."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer leaves the socket bound; close it so clients are refused.
        if server._server is not None:
            server._server.server_close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def teach_moto_or_in_message_body() -> None:
    """Let moto evaluate a top-level `$or` in a MessageBody-scoped filter policy, as SNS does.

    moto 5 accepts such a policy but matches nothing with it, so a queue with both plain and
    content-filtered subscriptions would receive no events. Idempotent; moto only.
    """
    from moto.sns.utils import FilterPolicyMatcher

    original = FilterPolicyMatcher._body_based_match
    if getattr(original, "_tctf_or", False):
        return

    def body_based_match(self: Any, message: dict[str, Any]) -> bool:
        policy = self.filter_policy
        alternatives = policy.get("$or") if isinstance(policy, dict) else None
        if not isinstance(alternatives, list):
            return bool(original(self, message))
        rest = {k: v for k, v in policy.items() if k != "$or"}
        return any(
            bool(original(FilterPolicyMatcher({**rest, **alt}, "MessageBody"), message))
            for alt in alternatives
        )

    body_based_match._tctf_or = True  # type: ignore[attr-defined]
    setattr(FilterPolicyMatcher, "_body_based_match", body_based_match)  # noqa: B010


_DYNAMODB_LOCK = threading.Lock()


def serialise_moto_dynamodb() -> None:
    """Make moto's DynamoDB take one call at a time, and a transaction cost what it writes.

    moto backs up each table a transaction touches with `copy.deepcopy`, stream records
    included, while other request threads change the same table: concurrent calls fail with
    `RuntimeError: dictionary changed size during iteration`, and every retry copies the
    whole table and its stream history again. DynamoDB itself takes concurrent calls, so
    only moto needs this. Idempotent; moto only.
    """
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "_tctf_serialised", False):
        return

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    def copy_shard(self: StreamShard, memo: dict[int, Any]) -> StreamShard:
        # A stream record never changes once written: the backup shares them.
        shard = copy.copy(self)
        memo[id(self)] = shard
        shard.table = copy.deepcopy(self.table, memo)
        shard.items = list(self.items)
        return shard

    call_action._tctf_serialised = True  # type: ignore[attr-defined]
    setattr(DynamoHandler, "call_action", call_action)  # noqa: B010
    setattr(StreamShard, "__deepcopy__", copy_shard)  # noqa: B010


def stop_moto_keeping_every_instance() -> None:
    """Let moto forget the models it no longer uses, so its memory follows its state.

    moto appends every model object it ever makes to a class-level list (for its
    `/moto-api/data.json` view): every message sent, and every item of every backup a
    transaction takes, stays in memory for good, and a table's backups grow with the
    table, so memory grows with the square of the writes. Process-wide: the child of
    `MotoProcess` only.

    The e-mails SES sent stay listed: `/moto-api/data.json` is where a developer (and the
    suite) reads what `tctf run --aws` sent, and there are as few as the sign-ups.
    """
    from moto.core.common_models import BaseModel
    from moto.ses.models import Message, RawMessage

    kept = (Message, RawMessage)

    def untracked(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
        instance = object.__new__(cls)
        if issubclass(cls, kept):
            getattr(cls, "instances_tracked").append(instance)  # noqa: B009 (moto sets it)
        return instance

    setattr(BaseModel, "__new__", untracked)  # noqa: B010


def _serve_until_stdin_closes(stdin: IO[str]) -> None:
    """The child of `MotoProcess`: announce the URL on stdout, serve until stdin closes."""
    stop_moto_keeping_every_instance()
    endpoint = LocalEndpoint()
    print(endpoint.start(), flush=True)
    stdin.read()
    endpoint.stop()


if __name__ == "__main__":
    _serve_until_stdin_closes(sys.stdin)
