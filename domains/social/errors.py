"""The social domain's errors."""

from __future__ import annotations

from bus.errors import Rejected


class InvalidCursor(Rejected):
    """A `cursor` no page of this list gave: HTTP 422, nothing read."""
