"""What every runtime logs of a delivery: one JSON log line per outcome.

Log lines carry the keys Lambda users search for (`level`, `message`, `timestamp`, `service`,
`correlation_id`, `cold_start`, plus what a caller passes in `extra`). The assembly
(`bus.assembly`) puts them on every runtime; spans are `bus.tracing`'s.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from bus.dispatch import Outcome
from bus.middleware import current_correlation_id

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_cold_start = True


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON line."""

    def __init__(self, service: str = "tctf") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        global _cold_start
        line: dict[str, Any] = {
            "level": record.levelname,
            "message": record.getMessage(),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "service": getattr(record, "service", self.service),
            "correlation_id": getattr(record, "correlation_id", None)
            or current_correlation_id.get(),
            "cold_start": _cold_start,
            "logger": record.name,
        }
        _cold_start = False
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO", service: str = "tctf") -> None:
    """Send every `tctf.*` log line to stdout as JSON."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger("tctf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


_deliveries = logging.getLogger("tctf.delivery")


def log_outcome(outcome: Outcome) -> None:
    """One line per record and handler: type, domain, handler, correlation id, outcome."""
    if outcome.status == "filtered":
        return
    level = logging.INFO if outcome.status in ("handled", "skipped") else logging.WARNING
    if not _deliveries.isEnabledFor(level):
        return  # per delivery: build nothing nobody reads
    envelope = outcome.envelope
    _deliveries.log(
        level,
        f"{outcome.status} {envelope.type if envelope else 'record'}",
        extra={
            "service": outcome.domain,
            "domain": outcome.domain,
            "handler": outcome.handler,
            "type": envelope.type if envelope else None,
            "event_id": envelope.id if envelope else None,
            "correlation_id": envelope.correlationid if envelope else None,
            "record_id": outcome.record_id,
            "outcome": outcome.status,
            "error": outcome.error,
        },
    )
