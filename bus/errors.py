"""Errors raised by the bus kernel.

Every error the kernel raises is a `BusError`; each names what went wrong and what to do.
"""

from __future__ import annotations


class BusError(Exception):
    """Base class of every error raised by the bus."""
