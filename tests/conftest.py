"""Fixtures shared by the whole suite: an AWS-compatible endpoint on loopback, and a
stateless domain."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

#: Processes the suite runs in when pytest-xdist is there and no `-n` is given: the CI
#: machine's two cores (docs/decisions/0030).
WORKERS = 2


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Spread the tests over WORKERS processes, each file whole in one, so a module-scoped
    fixture is built once. `-n N` chooses otherwise; `-n 0`, `--pdb` or `-p no:xdist`
    run everything in this process."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.option.numprocesses is None and not config.option.usepdb:
        config.option.numprocesses = WORKERS
        if config.option.dist == "no":
            config.option.dist = "loadfile"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port, for the whole session: a real HTTP endpoint."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Passwords hashed with argon2-cffi's CHEAPEST profile: still argon2id, verified as
    in production, at a thousandth of RFC 9106's cost, which sign-ups and sign-ins paid a
    few hundred times over. Tests of the cost itself delete the variable; a profile set
    before the run (to run the suite at production cost) is kept."""
    with pytest.MonkeyPatch.context() as patch:
        if "TCTF_PASSWORD_HASH_PROFILE" not in os.environ:
            patch.setenv("TCTF_PASSWORD_HASH_PROFILE", "CHEAPEST")
        yield


@pytest.fixture(autouse=True)
def _app_url_restored() -> Iterator[None]:
    """A test that runs `tctf run` in process points the app's URL (`TCTF_APP_URL`, which
    e-mailed links lead to) at the port it served: put it back as it was after the test."""
    before = os.environ.get("TCTF_APP_URL")
    yield
    if before is None:
        os.environ.pop("TCTF_APP_URL", None)
    else:
        os.environ["TCTF_APP_URL"] = before


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that runs `tctf` in process configures logging on a stream pytest closes after
    it: put the root and the project's loggers back, closing what the test added, so later
    lines (and the interpreter's last flush) do not write to a closed file."""
    from bus.observability import PROJECT_LOGGERS

    loggers = [logging.getLogger(), *map(logging.getLogger, PROJECT_LOGGERS)]
    saved = [(list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    added = {h for lg in loggers for h in lg.handlers} - {h for s in saved for h in s[0]}
    for handler in added:
        handler.close()  # else logging's shutdown flushes it into the closed stream
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def greeter() -> Iterator[Any]:
    """The suite's stateless domain (tests/stateless_domains/greeter), loadable by name as a
    function loads its domain (`domains.load("greeter")`) while the test runs."""
    import importlib
    from pathlib import Path

    import domains

    folder = str(Path(__file__).parent / "stateless_domains")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(domains, "__path__", [*domains.__path__, folder])
        yield importlib.import_module("domains.greeter.app").domain
