"""Time as the bus sees it: a real clock for production, a manual one for deterministic tests.

Visibility timeouts, backoff, TTLs and timestamps all read the injected clock, never `time`.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
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


class ManualTimer:
    """A callback `ManualClock.call_at` runs once the clock reaches `when`."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: ManualTimer) -> bool:
        return self.when < other.when


class ManualClock:
    """Time that moves only when told to, so retries and timeouts replay exactly.

    `sleep()` advances the clock instead of waiting: a backoff of 5 s costs nothing in a test
    yet is observed by everything that reads `now()` afterwards.

    With `bounds_handlers`, handler calls are bounded by this clock, not the loop's: their
    `handler_timeout`s are timers here (`call_at`), run by `bus.testing.Harness.settle`
    once every task waits, so a test of a hanging handler takes no real time. Only for
    handlers that wait on nothing outside the process: a call awaiting a thread or a
    socket while all else waits would be cut too.
    """

    def __init__(
        self, start: float = 1_767_225_600.0, *, bounds_handlers: bool = False
    ) -> None:  # start: 2026-01-01T00:00:00Z
        self._now = start
        self.bounds_handlers = bounds_handlers
        self._timers: list[ManualTimer] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back (advance by {seconds})")
        self._now += seconds

    def call_at(self, when: float, callback: Callable[[], object]) -> ManualTimer:
        """Have `run_due_timers()` run `callback` once the clock has reached `when`."""
        timer = ManualTimer(when, callback)
        heapq.heappush(self._timers, timer)
        return timer

    def next_timer(self) -> float | None:
        """When the earliest timer not cancelled is due; None if there is none."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].when if self._timers else None

    def run_due_timers(self) -> int:
        """Run every timer the clock has reached, earliest first; how many ran."""
        ran = 0
        while self._timers and self._timers[0].when <= self._now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
                ran += 1
        return ran

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
