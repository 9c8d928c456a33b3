"""The business: one sub-package per domain, each deployable as its own Lambda.

A domain package `domains/<name>/` holds `contracts.py` (the events it publishes, the only
module other domains may import) and `app.py` (its `Domain` with handlers and routes).
`load(name)` finds a domain by that convention, importing nothing of the others. A package
with contracts and no `app.py` yet publishes its facts' shapes before it runs: no domain.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bus.domain import Domain


def names() -> list[str]:
    """Every domain package here with an `app.py`, sorted."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(__path__)
        if m.ispkg and any(Path(p, m.name, "app.py").is_file() for p in __path__)
    )


def load(name: str) -> Domain:
    """Import `domains.<name>.app` and return its `domain`."""
    from bus.domain import Domain
    from bus.errors import ConfigurationError

    try:
        module = importlib.import_module(f"{__name__}.{name}.app")
    except ModuleNotFoundError as error:
        if error.name in (f"{__name__}.{name}", f"{__name__}.{name}.app"):
            raise ConfigurationError(
                f"no domain {name!r}: expected domains/{name}/app.py "
                f"(known: {', '.join(names()) or 'none'})"
            ) from None
        raise
    domain = getattr(module, "domain", None)
    if not isinstance(domain, Domain) or domain.name != name:
        raise ConfigurationError(f"domains/{name}/app.py must define domain = Domain({name!r})")
    return domain
