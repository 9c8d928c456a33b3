"""A local AWS-compatible endpoint: moto server on a free loopback port, in this process.

`tctf run --aws` without `--endpoint-url` starts one, and the outage test stops and starts
its HTTP listener: moto keeps its state in the process, so resources and messages outlive a
stop, as they would outlive a network outage on AWS.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalEndpoint:
    """`with LocalEndpoint() as url:`; `stop()` and `start()` again keep the same port."""

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
