"""Errors raised when an event pattern or a filter policy is not valid.

Messages carry AWS's own wording, so a pattern rejected here is rejected by AWS the same way.
"""

from __future__ import annotations

from bus.errors import BusError


class InvalidRoutingRule(BusError):
    """An event pattern or filter policy its service would reject; catch this for either."""


class PatternError(InvalidRoutingRule):
    """Raised while compiling a rule's leaves and objects; each language wraps `reason` in
    its own public error (`InvalidEventPattern`, `InvalidFilterPolicy`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NestingNotAllowed(PatternError):
    """A nested object where the language takes none (SNS MessageAttributes scope)."""

    def __init__(self) -> None:
        super().__init__("nested filter policy")


class InvalidEventPattern(InvalidRoutingRule):
    """An EventBridge event pattern that EventBridge itself would reject.

    `reason` holds AWS's wording (what follows "Reason: " in InvalidEventPatternException).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Event pattern is not valid. Reason: {reason}")


class InvalidFilterPolicy(InvalidRoutingRule):
    """An SNS subscription filter policy that SNS itself would reject.

    `reason` holds AWS's wording (what follows "FilterPolicy: " in SNS's InvalidParameter).
    """

    def __init__(self, reason: str, *, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or f"Invalid parameter: FilterPolicy: {reason}")
