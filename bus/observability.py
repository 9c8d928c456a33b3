"""What every runtime logs of a delivery: one JSON log line per outcome.

Log lines carry the keys Lambda users search for, Powertools' names: `timestamp`, `level`,
`message`, `service` (the domain), `correlation_id`; per delivery `event_id`, `event_type`,
`handler`, `outcome`, `duration_ms`, `receive_count`; in Lambda `cold_start`,
`function_name`, `function_request_id` and `xray_trace_id` (`invocation_keys`). Every line
passes through `bus.redaction` first. `LOG_LEVEL`, `POWERTOOLS_LOG_LEVEL`,
`AWS_LAMBDA_LOG_LEVEL` and `POWERTOOLS_SERVICE_NAME` behave as in Powertools
(`logging_settings`). The assembly (`bus.assembly`)
puts them on every runtime; spans are `bus.tracing`'s.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bus.clock import timestamp
from bus.dispatch import Outcome
from bus.envelope import MAX_INHERITED_ID_LENGTH
from bus.errors import ConfigurationError
from bus.held import HeldForStep
from bus.middleware import current_correlation_id
from bus.redaction import REDACTED, is_sensitive_name, redact, redact_text

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: Fields whose values the platform's code writes (a handler's name, an outcome), never data.
_PLATFORM_WORDS = frozenset({"handler", "outcome", "receive_count", "duration_ms"})
_root = logging.getLogger("tctf")
#: The loggers of every package of the project: `configure_logging` gives each its handler,
#: so a line about lost or retried work (`bus.storage.outbox`, `adapters.aws`) is JSON too.
PROJECT_LOGGERS = ("tctf", "bus", "adapters", "domains")
_deliveries = logging.getLogger("tctf.delivery")
#: One INFO line per HTTP request answered (`log_access`).
_access = logging.getLogger("tctf.access")
#: The methods a route is declared with, written as they come; any other a client sends is
#: redacted like any text.
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_PLAIN = (str, int, float, bool)
#: Delivery lines held for the end of a loop's step before they are written anyway.
_HOLD_AT_MOST = 1024

#: Keys the Lambda adapter puts on every line logged during an invocation (`cold_start`,
#: `function_name`, `function_request_id`, `xray_trace_id`); None outside one.
invocation_keys: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "tctf_invocation_keys", default=None
)

#: Level names as Lambda's advanced logging controls spell them, in `logging`'s names.
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


_last_stamp: tuple[int, str] = (0, "")


def _timestamp(created: float) -> str:
    """`bus.clock.timestamp`, kept for the millisecond: lines come in bursts."""
    global _last_stamp
    millisecond = int(created * 1000)
    last = _last_stamp
    if last[0] == millisecond:
        return last[1]
    stamp = timestamp(created)
    _last_stamp = (millisecond, stamp)
    return stamp


def _unredacted(value: Any) -> str:
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON line, redacted.

    `service` names lines that do not name their own (the domain a line is about does);
    with `fixed_service`, every line carries it (POWERTOOLS_SERVICE_NAME set by the user).
    """

    def __init__(self, service: str = "tctf", *, fixed_service: bool = False) -> None:
        super().__init__()
        self.service = service
        self.fixed_service = fixed_service

    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in _STANDARD}
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(
            record.created, record.levelname, record.getMessage(), record.name, fields, exception
        )

    def line(
        self,
        created: float,
        level: str,
        message: str,
        logger: str,
        fields: Mapping[str, Any],
        exception: str | None = None,
    ) -> str:
        """The JSON line of a message and its fields (a record's `extra`), redacted; the
        fields `service` and `correlation_id` fill those keys, None values are left out."""
        line: dict[str, Any] = {
            "timestamp": _timestamp(created),
            "level": level,
            "message": redact_text(message),
            "service": self.service
            if self.fixed_service
            else fields.get("service") or self.service,
            "correlation_id": fields.get("correlation_id") or current_correlation_id.get(),
        }
        keys = invocation_keys.get()
        if keys:
            line.update(keys)
        for key, value in fields.items():
            if value is None or key in line:
                continue
            if key in _PLATFORM_WORDS:
                line[key] = value
            elif is_sensitive_name(key):
                line[key] = REDACTED
            elif isinstance(value, str):
                line[key] = redact_text(value)
            else:
                line[key] = value if isinstance(value, _PLAIN) else redact(value)
        line["logger"] = logger
        if exception is not None:
            line["exception"] = redact_text(exception)
        return orjson.dumps(line, default=_unredacted).decode()


class JsonLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs: each record as a `JsonFormatter` line.

    The delivery log writes through `write_line` directly while this is the only handler its
    lines reach: one line per delivery is the platform's hottest log, and a `LogRecord`
    costs more to make than the line does to format. On an event loop those lines are held
    until the loop's current step is done and written together, in one write and one flush;
    any other line, a flush or a close writes what is held first, so the order stays.
    """

    formatter: JsonFormatter

    def __init__(self, stream: Any, formatter: JsonFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self._held = HeldForStep(self._write, _HOLD_AT_MOST)
        #: Closed: `logging.shutdown` still flushes it at exit, after its stream may close.
        self._closed_by_owner = False

    def write_line(self, line: str) -> None:
        """Write a line: on an event loop, with every other line of the loop's current step
        once it is done (a Lambda invocation flushes before it returns, `flush_log_lines`);
        outside one, at once."""
        self._held.add(line)

    def _write(self, lines: list[str]) -> None:
        lines.append("")  # the last line's end
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(self.terminator.join(lines))
                self.stream.flush()
            except Exception:
                self._failed(lines[0])

    def emit(self, record: logging.LogRecord) -> None:
        if self._held:
            self._held.hand_over()
        super().emit(record)

    def flush(self) -> None:
        if self._closed_by_owner:  # whose stream may be gone since: nothing is held
            return
        if self._held:
            self._held.hand_over()
        try:
            super().flush()
        except Exception:
            self._failed("(flushing)")

    def close(self) -> None:
        self.flush()
        self._closed_by_owner = True
        super().close()

    def _failed(self, line: str) -> None:
        # As `logging` does for a record: told on stderr, never raised into the delivery
        # that was being logged (a closed or broken stdout must not fail the work).
        self.handleError(logging.makeLogRecord({"msg": line, "name": _deliveries.name}))


def flush_log_lines() -> None:
    """Write out what `configure_logging`'s handler holds (before a Lambda invocation
    returns, when the process may be frozen until the next)."""
    for handler in _root.handlers:
        handler.flush()


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """The log level and service name a process's environment asks for."""

    level: str = "INFO"
    #: POWERTOOLS_SERVICE_NAME: the `service` of every line; None: each line's domain.
    service: str | None = None


def logging_settings(env: Mapping[str, str]) -> LoggingSettings:
    """As Powertools reads them: Lambda's AWS_LAMBDA_LOG_LEVEL (advanced logging controls)
    first, then POWERTOOLS_LOG_LEVEL, then LOG_LEVEL, in any case; POWERTOOLS_SERVICE_NAME
    names the service. A level that is none of them is refused, naming the variable."""
    level = "INFO"
    for variable in ("AWS_LAMBDA_LOG_LEVEL", "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"):
        given = env.get(variable, "").strip()
        if given:
            level = _LEVEL_ALIASES.get(given.upper(), given.upper())
            if level not in LOG_LEVELS:
                raise ConfigurationError(
                    f"{variable}={given!r} is not a log level: use one of {', '.join(LOG_LEVELS)}"
                )
            break
    service = env.get("POWERTOOLS_SERVICE_NAME", "").strip() or None
    return LoggingSettings(level, service)


def configure_logging(
    level: str = "INFO",
    service: str = "tctf",
    *,
    fixed_service: bool = False,
    stream: Any = None,
) -> None:
    """Send every log line of the project's loggers (`PROJECT_LOGGERS`) as JSON to `stream`
    (default: stdout), through one handler."""
    handler = JsonLines(
        stream if stream is not None else sys.stdout,
        JsonFormatter(service, fixed_service=fixed_service),
    )
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def configure_logging_from_env(env: Mapping[str, str], default_service: str) -> LoggingSettings:
    """`configure_logging` as the environment asks (`logging_settings`)."""
    settings = logging_settings(env)
    configure_logging(
        settings.level,
        settings.service or default_service,
        fixed_service=settings.service is not None,
    )
    return settings


def log_outcome(outcome: Outcome) -> None:
    """One line per record and handler: what it was, who handled it, how it ended, how long
    it took and how often it was delivered."""
    domain, record_id, status, handler, envelope, error, duration, receive_count, _ = outcome
    if status == "handled" or status == "skipped":
        level = _INFO
    elif status == "filtered":
        return
    else:
        level = _WARNING
    if not _deliveries.isEnabledFor(level):
        return  # per delivery: build nothing nobody reads
    correlation_id = None
    if envelope is not None:
        correlation_id = envelope.correlationid
        # A type the domain routed (an envelope of an unknown type gets no outcome with its
        # envelope): the code's own name. The id came with the envelope: it is filtered.
        event_type = envelope.type
    else:
        event_type = "record"
    sink = _sole_sink(level)
    if sink is None:
        fields: dict[str, Any] = {}
        if envelope is not None:
            fields["event_id"] = redact_text(envelope.id)
            fields["event_type"] = event_type
        _outcome_fields(fields, outcome)
        fields["service"] = domain
        fields["correlation_id"] = correlation_id
        _deliveries.log(level, f"{status} {event_type}", extra=fields)
        return
    formatter = sink.formatter
    if (
        envelope is None
        or handler is None
        or duration is None
        or error is not None
        or invocation_keys.get()
    ):
        sink.write_line(_delivery_line(formatter, outcome, level, event_type, correlation_id))
        return
    # The usual delivery, the platform's hottest line: one dict display, in the keys' order
    # `_delivery_line` gives them (one display measured faster than a key at a time).
    sink._held.add(
        _dumps(
            {
                "timestamp": _timestamp(_now()),
                "level": "INFO" if level == _INFO else "WARNING",
                "message": f"{status} {event_type}",
                "service": formatter.service if formatter.fixed_service else domain,
                "correlation_id": correlation_id or current_correlation_id.get(),
                "event_id": redact_text(envelope.id),
                "event_type": event_type,
                "handler": handler,
                "outcome": status,
                "duration_ms": _to_microsecond(duration),
                "receive_count": receive_count,
                "record_id": record_id,
                "logger": "tctf.delivery",
            },
            default=_unredacted,
        ).decode()
    )


def log_access(
    method: str,
    route: str | None,
    status: int,
    started: float,
    correlation_id: str,
    domain: str | None,
) -> None:
    """One line per HTTP request: its method, the template of the route that answered it
    (None when none matched: the raw path is never logged, its ids are personal data), its
    status and how long since `started` (a `time.perf_counter()` reading) it took.

    Built straight into a line when `configure_logging`'s handler is its only reader, as a
    delivery line is: a `LogRecord` measured costing more than the router's own work."""
    if not _access.isEnabledFor(_INFO):
        return
    duration_ms = _to_microsecond((_perf_counter() - started) * 1000.0)
    if method not in _HTTP_METHODS:
        method = redact_text(method)
    message = f"{method} {route or '(no route)'} {status}"
    sink = _sole_sink(_INFO, _access)
    if sink is None:
        fields = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "correlation_id": correlation_id,
            "service": domain,
        }
        _access.info("%s", message, extra=fields)
        return
    formatter = sink.formatter
    line: dict[str, Any] = {
        "timestamp": _timestamp(_now()),
        "level": "INFO",
        "message": message,
        "service": formatter.service if formatter.fixed_service or domain is None else domain,
        "correlation_id": correlation_id,
    }
    keys = invocation_keys.get()
    if keys:
        line.update(keys)
    line["method"] = method
    if route is not None:
        line["route"] = route
    line["status"] = status
    line["duration_ms"] = duration_ms
    line["logger"] = "tctf.access"
    sink.write_line(_dumps(line, default=_unredacted).decode())


def _delivery_line(
    formatter: JsonFormatter,
    outcome: Outcome,
    level: int,
    event_type: str,
    correlation_id: str | None,
) -> str:
    """The line `formatter.line` makes of a delivery's fields, built in one go in the keys'
    order (test_logging holds the two to the same line). One mapping encoded by orjson
    measured faster than a line put together from parts made once per handler."""
    line: dict[str, Any] = {
        "timestamp": _timestamp(_now()),
        "level": "INFO" if level == _INFO else "WARNING",
        "message": f"{outcome.status} {event_type}",
        "service": formatter.service if formatter.fixed_service else outcome.domain,
        "correlation_id": correlation_id or current_correlation_id.get(),
    }
    keys = invocation_keys.get()
    if keys:
        line.update(keys)
    envelope = outcome.envelope
    if envelope is not None:
        line["event_id"] = redact_text(envelope.id)
        line["event_type"] = event_type
    _outcome_fields(line, outcome)
    line["logger"] = "tctf.delivery"
    return _dumps(line, default=_unredacted).decode()


_INFO = logging.INFO
_WARNING = logging.WARNING
_now = time.time
_perf_counter = time.perf_counter
_dumps = orjson.dumps


def _outcome_fields(fields: dict[str, Any], outcome: Outcome) -> None:
    """The delivery's own fields, in the order they are written; None left out, as the
    formatter leaves it out."""
    if outcome.handler is not None:
        fields["handler"] = outcome.handler
    fields["outcome"] = outcome.status
    duration = outcome.duration_ms
    if duration is not None:
        fields["duration_ms"] = _to_microsecond(duration)
    fields["receive_count"] = outcome.receive_count
    fields["record_id"] = outcome.record_id  # the transport's own id, not data
    if outcome.error is not None:
        fields["error"] = redact_text(outcome.error)


def _to_microsecond(duration_ms: float) -> float:
    """A handler call's duration (never negative) in milliseconds to the nearest microsecond,
    as `round(duration_ms, 3)` has it but for a tie the binary fraction puts a hair to one
    side, at a quarter of its cost (once per delivery)."""
    return int(duration_ms * 1000.0 + 0.5) / 1000.0


def _sole_sink(level: int, logger: logging.Logger = _deliveries) -> JsonLines | None:
    """`configure_logging`'s handler when a line of `logger` (a child of `tctf`) would
    reach it and nothing else (no handler or filter of anyone else's on the way)."""
    if logger.handlers or logger.filters or not logger.propagate:
        return None
    handlers = _root.handlers
    if len(handlers) != 1 or _root.filters:
        return None
    sink = handlers[0]
    if type(sink) is not JsonLines or sink.filters or level < sink.level:
        return None
    return sink


def log_dead_lettered(
    logger: logging.Logger,
    *,
    service: str | None,
    queue: str,
    dlq: str | None,
    message_id: str,
    body: bytes | str | Mapping[str, Any],
    type_attribute: str | None,
    reason: str,
    receive_count: int,
) -> None:
    """The one ERROR line for a record moved to its DLQ, whoever moves it (the in-memory
    queue, a function parking it, SQS's redrive after its last receive): on AWS nothing
    else says so. `service` is the domain whose queue it was; `body` gives the event type
    and correlation id where it is an envelope."""
    event_type, correlation_id = _type_and_correlation(body, type_attribute)
    logger.error(
        "dead-lettered message %s (%s) from %s: %s",
        message_id,
        event_type,
        queue,
        reason,
        extra={
            "service": service,
            "queue": queue,
            "dlq": dlq,
            "message_id": message_id,
            "event_type": event_type,
            "reason": reason,
            "receive_count": receive_count,
            "correlation_id": correlation_id,
        },
    )


def _type_and_correlation(
    body: bytes | str | Mapping[str, Any], type_attribute: str | None
) -> tuple[str | None, str | None]:
    """The event type and correlation id a dead-lettered body names, where a line can carry
    them (a body that is not an envelope names neither)."""
    raw: object = body
    if isinstance(body, bytes | str):
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            return type_attribute or None, None
    if not isinstance(raw, Mapping):
        return type_attribute or None, None
    found = [raw.get("type"), raw.get("correlationid")]
    event_type, correlation_id = (
        value if isinstance(value, str) and 0 < len(value) <= MAX_INHERITED_ID_LENGTH else None
        for value in found
    )
    return type_attribute or event_type, correlation_id
