"""Metrics a domain records between two flushes: what `ctx.metrics` is.

A handler counts business facts (`ctx.metrics.add("UsersSignedUp")`) and records
measurements (`ctx.metrics.record("Latency", 12.5, "Milliseconds")`); the platform adds its
own per handler (`handler_metrics`). Each runtime drains them at its own rhythm — once per
Lambda invocation, once per batch on the poller, periodically in memory — and writes them
as CloudWatch Embedded Metric Format documents (`bus.emf`), with the dimension `service`
naming the domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from bus.errors import ConfigurationError

if TYPE_CHECKING:  # the dispatcher owns a `Metrics`: only the type is needed here
    from bus.dispatch import Outcome

Unit = Literal[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
]
#: Every unit CloudWatch accepts (its `StandardUnit`).
UNITS: frozenset[str] = frozenset(Unit.__args__)  # type: ignore[attr-defined]
#: CloudWatch's limit on a metric name's length.
MAX_NAME_LENGTH = 255
#: The dimension every metric carries: the domain that recorded it.
SERVICE = "service"
#: The second dimension of the platform's per-handler metrics.
HANDLER = "handler"

Dimensions = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Series:
    """One metric under one set of dimensions: its unit, resolution and values so far."""

    name: str
    dimensions: Dimensions
    unit: str
    #: Seconds CloudWatch stores it at: 60 (standard) or 1 (high resolution).
    resolution: int
    #: A counter holds one value, its running sum; a measurement, every value recorded.
    values: list[float] = field(default_factory=list)


class Metrics:
    """What one domain (`service`) recorded since the last `drain`."""

    __slots__ = ("_by_handler", "_series", "service")

    def __init__(self, service: str = "tctf") -> None:
        self.service = service
        self._series: dict[tuple[Dimensions, str], Series] = {}
        #: Each handler's own series by name, since the last drain (looked up per delivery).
        self._by_handler: dict[str | None, dict[str, Series]] = {}

    def add(
        self,
        name: str,
        value: float = 1,
        unit: Unit = "Count",
        *,
        high_resolution: bool = False,
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        """Count `value` more of `name`: the values added between two flushes are summed."""
        series = self._series_for(name, unit, high_resolution, dimensions)
        _check_value(name, value)
        if series.values:
            series.values[0] += value
        else:
            series.values.append(value)

    def record(
        self,
        name: str,
        value: float,
        unit: Unit,
        *,
        high_resolution: bool = False,
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        """Record one measurement of `name`: every value is kept, and CloudWatch gives its
        statistics (average, percentiles) over them."""
        series = self._series_for(name, unit, high_resolution, dimensions)
        _check_value(name, value)
        series.values.append(value)

    def _handler_series(self, handler: str | None, name: str, unit: str) -> Series:
        return self._series_for(name, unit, False, {HANDLER: handler} if handler else None)

    def drain(self) -> list[Series]:
        """Everything recorded since the last drain, forgotten here."""
        drained = list(self._series.values())
        self._series = {}
        self._by_handler = {}
        return drained

    def __len__(self) -> int:
        return len(self._series)

    def value(self, name: str, dimensions: Mapping[str, str] | None = None) -> float:
        """The sum of what `name` holds now under these extra dimensions (0 if nothing)."""
        series = self._series.get((self._dimensions(dimensions), name))
        return sum(series.values) if series is not None else 0

    def _series_for(
        self,
        name: str,
        unit: str,
        high_resolution: bool,
        dimensions: Mapping[str, str] | None,
    ) -> Series:
        key = (self._dimensions(dimensions), name)
        resolution = 1 if high_resolution else 60
        series = self._series.get(key)
        if series is None:
            _check_name(name, unit, key[0])
            series = self._series[key] = Series(name, key[0], unit, resolution)
        elif series.unit != unit or series.resolution != resolution:
            raise ConfigurationError(
                f"metric {name!r} of {self.service} was recorded in {series.unit} at "
                f"{series.resolution}s resolution; one name keeps one unit and resolution"
            )
        return series

    def _dimensions(self, extra: Mapping[str, str] | None) -> Dimensions:
        if not extra:
            return ((SERVICE, self.service),)
        return ((SERVICE, self.service), *sorted((str(k), str(v)) for k, v in extra.items()))


def _check_name(name: str, unit: str, dimensions: Dimensions) -> None:
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ConfigurationError(
            f"metric name {name!r}: 1 to {MAX_NAME_LENGTH} printable characters, as CloudWatch "
            "takes"
        )
    if unit not in UNITS:
        raise ConfigurationError(
            f"metric {name!r}: unit {unit!r} is not one CloudWatch knows "
            f"(one of {', '.join(sorted(UNITS))})"
        )
    if any(name == dimension for dimension, _ in dimensions):
        raise ConfigurationError(f"metric {name!r} has the name of one of its dimensions")


def _check_value(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"metric {name!r}: {value!r} is not a finite number")


def record_outcome(metrics: Metrics, outcome: Outcome, now: float) -> None:
    """The platform's own metrics of one delivery, by handler: `Processed`, `Skipped`
    (duplicates), `Failed` (delivered again later), `Parked` (dead-lettered), the handler
    call's `Duration`, and the `RecordAge` when it was handled (since SQS accepted it, or
    since the envelope's time).

    Once per delivery, on a path that checks nothing: the names, units and values are the
    platform's own, and each handler's series are looked up by name since the last drain.
    """
    _, _, status, handler, envelope, _, duration_ms, _, sent = outcome
    if status == "filtered":
        return
    if sent is None and envelope is not None:
        sent = _envelope_time(envelope.time)
    named = metrics._by_handler.get(handler)
    if named is None:
        named = metrics._by_handler[handler] = {}
    counter = _COUNTERS[status]
    count = named.get(counter)
    if count is None:
        count = named[counter] = metrics._handler_series(handler, counter, "Count")
    counted = count.values
    if counted:
        counted[0] += 1
    else:
        counted.append(1)
    if duration_ms is not None:
        duration = named.get("Duration")
        if duration is None:
            duration = named["Duration"] = metrics._handler_series(
                handler, "Duration", "Milliseconds"
            )
        duration.values.append(duration_ms)
    if sent is not None:
        age = named.get("RecordAge")
        if age is None:
            age = named["RecordAge"] = metrics._handler_series(handler, "RecordAge", "Milliseconds")
        age_ms = (now - sent) * 1000
        age.values.append(age_ms if age_ms > 0.0 else 0.0)


_COUNTERS = {
    "handled": "Processed",
    "skipped": "Skipped",
    "failed": "Failed",
    "parked": "Parked",
}


_seconds: dict[str, float] = {}
#: Recent envelope times, parsed: a fan-out's subscribers see the same times, interleaved.
_recent_times: dict[str, float | None] = {}


def _envelope_time(value: str) -> float | None:
    """Epoch seconds of an envelope's RFC 3339 `time`, remembered for recent values and
    the second's part parsed once (`2026-12-01T10:00:00` of `2026-12-01T10:00:00.123Z`):
    deliveries come in bursts."""
    try:
        return _recent_times[value]
    except KeyError:
        pass
    parsed = _parse_time(value)
    if len(_recent_times) >= 256:
        _recent_times.clear()
    _recent_times[value] = parsed
    return parsed


def _parse_time(value: str) -> float | None:
    second, dot, rest = value.partition(".")
    if dot and rest.endswith("Z") and rest[:-1].isdigit():
        start = _seconds.get(second)
        if start is None:
            try:
                start = datetime.fromisoformat(second + "+00:00").timestamp()
            except ValueError:
                return None
            if len(_seconds) > 64:
                _seconds.clear()
            _seconds[second] = start
        return start + int(rest[:-1]) / 10.0 ** (len(rest) - 1)
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
