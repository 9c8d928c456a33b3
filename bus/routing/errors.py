"""Errors raised when an event pattern or a filter policy is not valid.

Messages carry AWS's own wording, so a pattern rejected here is rejected by AWS the same way.
"""

from __future__ import annotations

from bus.errors import BusError


class InvalidEventPattern(BusError):
    """An EventBridge event pattern that EventBridge itself would reject.

    `reason` holds AWS's wording (what follows "Reason: " in InvalidEventPatternException).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Event pattern is not valid. Reason: {reason}")


class InvalidFilterPolicy(BusError):
    """An SNS subscription filter policy that SNS itself would reject.

    `reason` holds AWS's wording (what follows "FilterPolicy: " in SNS's InvalidParameter).
    """

    def __init__(self, reason: str, *, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or f"Invalid parameter: FilterPolicy: {reason}")
