"""Time as the bus sees it: a real clock for production, a manual one for deterministic tests.

Visibility timeouts, backoff, TTLs and timestamps all read the injected clock, never `time`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, and a way to wait."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time; sleeping really waits."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        import anyio  # loaded on first use: not on a Lambda's import path

        await anyio.sleep(seconds)


class ManualClock:
    """Time that moves only when told to, so retries and timeouts replay exactly.

    `sleep()` advances the clock instead of waiting: a backoff of 5 s costs nothing in a test
    yet is observed by everything that reads `now()` afterwards.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back (advance by {seconds})")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        import anyio.lowlevel

        self.advance(max(seconds, 0.0))
        await anyio.lowlevel.checkpoint()


def isoformat(epoch_seconds: float) -> str:
    """RFC 3339 timestamp with millisecond precision, as CloudEvents `time` wants."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_second_prefixes: dict[int, str] = {}


def timestamp(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds; the second's prefix is cached (called per publish)."""
    second = int(epoch)
    prefix = _second_prefixes.get(second)
    if prefix is None:
        if len(_second_prefixes) > 64:
            _second_prefixes.clear()
        prefix = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_prefixes[second] = prefix
    return f"{prefix}.{int((epoch - second) * 1000):03d}Z"
