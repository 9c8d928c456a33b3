"""Items held until the running event loop's current step is done, then handed over
together: a batch's delivery log lines go out in one write, its spans to the span
processors in one hand-over, where one each would cost more than making them.

Outside an event loop, or once `at_most` are held, an item is handed over at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: The running event loop or None, without the exception `asyncio.get_running_loop` raises.
_running_loop = asyncio._get_running_loop


class HeldForStep(Generic[T]):
    """Holds items for `hand_over`, which gets them in the order they came."""

    __slots__ = ("_at_most", "_hand_over", "_items", "_on")

    def __init__(self, hand_over: Callable[[list[T]], None], at_most: int) -> None:
        self._hand_over = hand_over
        self._at_most = at_most
        self._items: list[T] = []
        #: The loop a hand-over is scheduled on, if any (one that closes first leaves it
        #: set, and the next loop schedules its own).
        self._on: asyncio.AbstractEventLoop | None = None

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, item: T) -> None:
        items = self._items
        items.append(item)
        loop = _running_loop()
        if loop is None or len(items) >= self._at_most:
            self.hand_over()
        elif self._on is not loop:
            self._on = loop
            loop.call_soon(self.hand_over)

    def hand_over(self) -> None:
        """Hand every held item over now (a flush, a Lambda invocation's end, an exit)."""
        self._on = None
        items, self._items = self._items, []
        if items:
            self._hand_over(items)
