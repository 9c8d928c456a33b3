"""Business metrics a handler counts through `ctx.metrics`.

The platform reads them after each delivery; a runtime flushes them in its own way.
"""

from __future__ import annotations

from collections import defaultdict


class Metrics:
    """Counters a handler adds to; the platform flushes them (e.g. as CloudWatch EMF)."""

    def __init__(self) -> None:
        self.values: defaultdict[str, float] = defaultdict(float)

    def add(self, name: str, value: float = 1) -> None:
        self.values[name] += value
