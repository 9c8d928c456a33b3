"""The search domain's errors."""

from __future__ import annotations

from bus.errors import Rejected, TransientError


class InvalidQuery(Rejected):
    """A search the index cannot run (no word, too many words, a cursor it did not give):
    HTTP 422 with the reason."""


class IndexConflict(TransientError):
    """Another delivery changed the same document between this one's read and its commit:
    retried, and the retry reads the newer state."""
