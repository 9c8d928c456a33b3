"""One access line per HTTP request under `tctf run` (the in-memory runtime behind the ASGI
app): method, route template, status, duration and correlation id, with the keys every
other line has; never the raw path, whose ids are personal data."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from adapters.http.asgi import HttpApp
from bus.observability import configure_logging
from tctf.config import load_domains
from tctf.platform import Platform
from tests.asgi import asgi_request


@pytest.fixture
def stdout() -> Iterator[io.StringIO]:
    """`configure_logging` writing to a buffer; the project's loggers restored afterwards."""
    loggers = [logging.getLogger(name) for name in ("tctf", "bus", "adapters", "domains")]
    saved = [(list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    written = io.StringIO()
    configure_logging("INFO", "tctf", stream=written)
    try:
        yield written
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def access_lines(written: io.StringIO) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in written.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "tctf.access"]


async def test_each_request_logs_its_route_template_never_its_path(stdout: io.StringIO) -> None:
    app = HttpApp(Platform(load_domains(["users"]), seed=1).router)
    signed_up = await asgi_request(
        app,
        "POST",
        "/users",
        orjson.dumps({"email": "ada@example.org", "name": "Ada"}),
        [(b"x-correlation-id", b"signup-1")],
    )
    someone = await asgi_request(app, "GET", "/users/u-ada-4711")
    nowhere = await asgi_request(app, "GET", "/people/ada@example.org")
    assert (signed_up.status, someone.status, nowhere.status) == (201, 401, 404)

    lines = access_lines(stdout)
    assert [(line["method"], line.get("route"), line["status"]) for line in lines] == [
        ("POST", "/users", 201),
        ("GET", "/users/{user_id}", 401),
        ("GET", None, 404),
    ]
    first, second, third = lines
    assert first["correlation_id"] == "signup-1"
    assert second["correlation_id"] == someone.headers["x-correlation-id"]
    assert third["correlation_id"] == nowhere.headers["x-correlation-id"]
    for line in lines:
        assert line["level"] == "INFO"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert {"timestamp", "message", "service"} <= set(line)
    assert (first["service"], second["service"], third["service"]) == ("users", "users", "tctf")
    assert first["message"] == "POST /users 201"
    written = stdout.getvalue()
    assert "u-ada-4711" not in written and "/people" not in written


async def test_no_line_is_built_above_info(stdout: io.StringIO) -> None:
    logging.getLogger("tctf").setLevel(logging.WARNING)
    app = HttpApp(Platform(load_domains(["users"]), seed=1).router)
    assert (await asgi_request(app, "GET", "/nowhere")).status == 404
    assert access_lines(stdout) == []


async def test_the_line_is_the_same_written_directly_or_through_a_log_record(
    stdout: io.StringIO,
) -> None:
    """With no other reader the line is built straight from the request (it is per request);
    a filter on the logger makes it a `LogRecord` through the same formatter instead."""
    app = HttpApp(Platform(load_domains(["users"]), seed=1).router)
    access = logging.getLogger("tctf.access")
    headers = [(b"x-correlation-id", b"same-1")]
    await asgi_request(app, "GET", "/users/u-1", headers=headers)
    access.addFilter(lambda record: True)
    try:
        await asgi_request(app, "GET", "/users/u-1", headers=headers)
    finally:
        access.filters.clear()
    direct, recorded = access_lines(stdout)
    for line in (direct, recorded):
        del line["timestamp"], line["duration_ms"]
    assert list(direct.items()) == list(recorded.items())
