"""Which domains a command runs: those named, or every package under `domains/`.

A name is checked before anything is imported by it, so a path is refused, not followed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import domains
from bus import Domain
from tctf.errors import UsageError

#: What a domain's name may be: a package directly under `domains/` (never a path).
DOMAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def check_domain_name(name: str) -> None:
    """Refuse a name that is no package under `domains/` (a path, a dotted name)."""
    if not DOMAIN_NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a domain name: name a package under domains/ "
            f"(known: {', '.join(domains.names()) or 'none'})"
        )


def load_domains(names: Sequence[str] | None = None) -> list[Domain]:
    """The named domains, or all of them."""
    for name in names or ():
        check_domain_name(name)
    return [domains.load(n) for n in (names or domains.names())]
