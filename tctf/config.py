"""Which domains a command runs: those named, or every package under `domains/`."""

from __future__ import annotations

from collections.abc import Sequence

import domains
from bus import Domain


def load_domains(names: Sequence[str] | None = None) -> list[Domain]:
    """The named domains, or all of them."""
    return [domains.load(n) for n in (names or domains.names())]
