"""The JSON log line: one per delivery, the same whether written through `logging` or
straight by `configure_logging`'s handler; levels and service names read from the
environment as Powertools reads them; Lambda's invocation keys on every line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bus import Context, Domain, DomainSettings, Event
from bus.clock import timestamp
from bus.dispatch import Outcome
from bus.envelope import Envelope
from bus.errors import ConfigurationError
from bus.middleware import current_correlation_id
from bus.observability import (
    JsonFormatter,
    LoggingSettings,
    configure_logging,
    flush_log_lines,
    invocation_keys,
    log_outcome,
    logging_settings,
)
from bus.testing import Harness

ENVELOPE = Envelope(
    id="0190a000-0000-7000-8000-000000000001",
    source="users",
    type="USER_CREATED",
    time=timestamp(1_767_225_600.0),
    dataversion=1,
    correlationid="signup-1",
    data={},
)


@pytest.fixture
def stdout() -> Iterator[io.StringIO]:
    """`configure_logging` writing to a buffer; the `tctf` logger restored afterwards."""
    root = logging.getLogger("tctf")
    saved = (list(root.handlers), root.level, root.propagate)
    written = io.StringIO()
    configure_logging("INFO", "tctf", stream=written)
    try:
        yield written
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def _lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def test_a_delivery_line_is_the_same_written_directly_or_through_a_log_record(
    stdout: io.StringIO,
) -> None:
    configure_logging("INFO", "tctf", stream=stdout)  # again: pytest's capture joined it
    assert len(logging.getLogger("tctf").handlers) == 1, "the direct path is the one compared"
    failed = Outcome(
        "messaging",
        "r1",
        "failed",
        "messaging.welcome_new_user",
        ENVELOPE,
        "TimeoutError: smtp.example.com refused ada@example.com (password=hunter2)",
        12.3456,
        2,
    )
    log_outcome(failed)
    flush_log_lines()
    listener = io.StringIO()
    handler = logging.StreamHandler(listener)
    handler.setFormatter(JsonFormatter())
    delivery = logging.getLogger("tctf.delivery")
    delivery.addHandler(handler)  # another reader: the line goes through `logging` now
    try:
        log_outcome(failed)
    finally:
        delivery.removeHandler(handler)
    (direct, *_), (recorded,) = _lines(stdout.getvalue()), _lines(listener.getvalue())
    assert direct.pop("timestamp").endswith("Z") and recorded.pop("timestamp").endswith("Z")
    assert direct == recorded
    assert direct == {
        "level": "WARNING",
        "message": "failed USER_CREATED",
        "service": "messaging",
        "correlation_id": "signup-1",
        "event_id": ENVELOPE.id,
        "event_type": "USER_CREATED",
        "handler": "messaging.welcome_new_user",
        "outcome": "failed",
        "duration_ms": 12.346,
        "receive_count": 2,
        "record_id": "r1",
        "error": "TimeoutError: smtp.example.com refused [EMAIL] (password=[REDACTED])",
        "logger": "tctf.delivery",
    }


def test_lambdas_invocation_keys_are_on_every_line_while_set(stdout: io.StringIO) -> None:
    log = logging.getLogger("tctf.users")
    token = invocation_keys.set({"cold_start": True, "function_request_id": "req-1"})
    try:
        log.info("inside", extra={"user_id": "u1"})
    finally:
        invocation_keys.reset(token)
    log.info("outside")
    flush_log_lines()
    inside, outside = _lines(stdout.getvalue())
    assert (inside["cold_start"], inside["function_request_id"], inside["user_id"]) == (
        True,
        "req-1",
        "u1",
    )
    assert "cold_start" not in outside and "function_request_id" not in outside


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, LoggingSettings("INFO", None)),
        ({"LOG_LEVEL": "debug"}, LoggingSettings("DEBUG", None)),
        ({"LOG_LEVEL": "DEBUG", "POWERTOOLS_LOG_LEVEL": "error"}, LoggingSettings("ERROR")),
        ({"AWS_LAMBDA_LOG_LEVEL": "WARN", "LOG_LEVEL": "DEBUG"}, LoggingSettings("WARNING")),
        ({"POWERTOOLS_SERVICE_NAME": "signups"}, LoggingSettings("INFO", "signups")),
    ],
)
def test_levels_and_the_service_name_are_read_as_powertools_reads_them(
    env: dict[str, str], expected: LoggingSettings
) -> None:
    assert logging_settings(env) == expected


def test_a_level_that_is_none_is_refused_naming_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="LOG_LEVEL='verbose' is not a log level"):
        logging_settings({"LOG_LEVEL": "verbose"})


def test_a_service_name_set_by_the_user_names_every_line() -> None:
    formatter = JsonFormatter("signups", fixed_service=True)
    record = logging.makeLogRecord({"msg": "hello", "service": "users", "levelname": "INFO"})
    assert orjson.loads(formatter.format(record))["service"] == "signups"
    assert orjson.loads(JsonFormatter().format(record))["service"] == "users"


class Flushes(io.StringIO):
    """A stream that remembers how many lines it held at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[int] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue().count("\n"))


def test_delivery_lines_written_on_a_loop_are_flushed_together_once_its_step_ends() -> None:
    root = logging.getLogger("tctf")
    saved = (list(root.handlers), root.level, root.propagate)
    stream = Flushes()
    configure_logging("INFO", stream=stream)
    handled = Outcome("messaging", "r1", "handled", "messaging.h", ENVELOPE, None, 1.0)

    async def deliver(count: int, then_exit: bool = False) -> None:
        for _ in range(count):
            log_outcome(handled)
        if then_exit:
            raise SystemExit  # the loop ends at once, its scheduled flush never run

    try:
        abandoned = asyncio.new_event_loop()
        with pytest.raises(SystemExit):
            abandoned.run_until_complete(deliver(2, then_exit=True))
        abandoned.close()
        asyncio.run(deliver(3))  # must not wait for the abandoned loop's flush
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    assert stream.flushed == [5], "one flush for the lines of a step, none lost"


def test_a_log_that_cannot_be_written_fails_no_delivery(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger("tctf")
    saved = (list(root.handlers), root.level, root.propagate)
    closed = io.StringIO()
    configure_logging("INFO", stream=closed)
    closed.close()  # stdout gone: a test's capture ended, a pipe's reader left
    try:
        log_outcome(Outcome("messaging", "r1", "handled", "messaging.h", ENVELOPE, None, 1.0))
        flush_log_lines()
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    assert "Logging error" in capsys.readouterr().err


def test_a_closed_handler_whose_stream_is_gone_reports_nothing_when_flushed_at_exit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = logging.getLogger("tctf")
    saved = (list(root.handlers), root.level, root.propagate)
    stream = (tmp_path / "lines.jsonl").open("w")  # a file: flushing it once closed fails
    configure_logging("INFO", stream=stream)
    [handler] = root.handlers
    try:
        handler.close()  # its owner is done with it, then closes the file
        stream.close()
        handler.flush()  # what `logging.shutdown` does to every handler at exit
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    assert "Logging error" not in capsys.readouterr().err


@pytest.mark.parametrize("inside_lambda", [False, True])
def test_a_handled_delivery_line_is_the_same_written_directly_or_through_a_log_record(
    stdout: io.StringIO, inside_lambda: bool
) -> None:
    configure_logging("INFO", "tctf", stream=stdout)  # again: pytest's capture joined it
    handled = Outcome("messaging", "r1", "handled", "messaging.h", ENVELOPE, None, 2.00049, 1)
    keys = {"cold_start": False, "function_request_id": "req-9"} if inside_lambda else None
    token = invocation_keys.set(keys)
    listener = io.StringIO()
    handler = logging.StreamHandler(listener)
    handler.setFormatter(JsonFormatter())
    delivery = logging.getLogger("tctf.delivery")
    try:
        log_outcome(handled)
        flush_log_lines()
        delivery.addHandler(handler)  # another reader: the line goes through `logging` now
        log_outcome(handled)
    finally:
        delivery.removeHandler(handler)
        invocation_keys.reset(token)
    (direct, *_), (recorded,) = _lines(stdout.getvalue()), _lines(listener.getvalue())
    assert direct.pop("timestamp").endswith("Z") and recorded.pop("timestamp").endswith("Z")
    assert list(direct) == list(recorded), "the same keys in the same order"
    assert direct == recorded
    assert (direct["duration_ms"], direct["outcome"]) == (2.0, "handled")
    assert ("function_request_id" in direct) is inside_lambda


def test_a_line_logged_after_held_delivery_lines_is_written_after_them() -> None:
    root = logging.getLogger("tctf")
    saved = (list(root.handlers), root.level, root.propagate)
    stream = io.StringIO()
    # Configured here, not in a fixture: pytest's capture joins the logger's handlers
    # between the two, and the direct path writes only where its handler reads alone.
    configure_logging("INFO", stream=stream)
    handled = Outcome("messaging", "r1", "handled", "messaging.h", ENVELOPE, None, 1.0)

    async def deliver_then_log() -> str:
        log_outcome(handled)
        log_outcome(handled._replace(record_id="r2"))
        held = stream.getvalue()
        logging.getLogger("tctf.messaging").warning("after both")
        return held

    try:
        held = asyncio.run(deliver_then_log())
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    assert held == "", "delivery lines wait for the end of the loop's step"
    lines = _lines(stream.getvalue())
    assert [line.get("record_id") for line in lines] == ["r1", "r2", None]
    assert lines[2]["message"] == "after both"


@pytest.mark.parametrize(
    "logger", ["bus.storage.outbox", "adapters.aws", "domains.users", "tctf.lambda"]
)
def test_every_logger_of_the_project_writes_json_lines_with_the_correlation_id(
    stdout: io.StringIO, logger: str
) -> None:
    configure_logging("INFO", "tctf", stream=stdout)  # again: pytest's capture joined it
    token = current_correlation_id.set("signup-1")
    try:
        logging.getLogger(logger).error("parking an item for ada@example.com")
    finally:
        current_correlation_id.reset(token)
    flush_log_lines()
    [line] = _lines(stdout.getvalue())
    assert line["logger"] == logger and line["level"] == "ERROR"
    assert line["correlation_id"] == "signup-1"
    assert "ada@example.com" not in line["message"]


class Exploded(Event):
    type = "EXPLODED"
    order: str


async def test_a_failing_handler_logs_its_traceback_each_attempt_and_its_record_parking(
    stdout: io.StringIO,
) -> None:
    shop = Domain("shop", DomainSettings(retry_attempts=1, max_receive_count=2))

    @shop.on(Exploded)
    async def explode(event: Exploded, ctx: Context) -> None:
        raise ValueError(f"kaboom for ada@example.com (password=hunter2) on {event.order}")

    async with Harness(shop) as h:
        configure_logging("INFO", "tctf", stream=stdout)  # again: pytest's capture joined it
        published = await h.publish(Exploded(order="o-1"), correlation_id="signup-1")
        await h.settle()
        [parked] = await h.dead_letters("shop")
    flush_log_lines()
    lines = _lines(stdout.getvalue())
    tracebacks = [line for line in lines if "exception" in line]
    assert len(tracebacks) == 2 and {t["level"] for t in tracebacks} == {"WARNING"}
    for line in tracebacks:
        assert line["exception"].startswith("Traceback") and "in explode" in line["exception"]
        assert "ValueError: kaboom for [EMAIL] (password=[REDACTED]) on o-1" in line["exception"]
        assert (line["correlation_id"], line["event_id"]) == ("signup-1", published.id)
        assert line["handler"] == "shop.explode"
    assert "hunter2" not in stdout.getvalue() and "ada@example.com" not in stdout.getvalue()
    [dead] = [line for line in lines if line["message"].startswith("dead-lettered")]
    assert dead["level"] == "ERROR" and dead["correlation_id"] == "signup-1"
    assert dead["message_id"] == parked.message_id and dead["event_type"] == "EXPLODED"
    assert dead["receive_count"] == parked.receive_count and "max_receive_count 2" in dead["reason"]
    assert dead["queue"].startswith("tctf-shop") and dead["dlq"] == f"{dead['queue']}-dlq"
    assert dead["service"] == "shop"  # the domain whose queue it was, as a delivery line says
