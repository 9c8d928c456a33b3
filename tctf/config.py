"""Finding the domains: each `domains/<name>/app.py` exposes a `domain` object.

Only the named domains are imported, so a Lambda loads its own domain and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

from bus import ConfigurationError, Domain


def domain_names() -> list[str]:
    """Every domain package under `domains/`, sorted."""
    import domains

    return sorted(m.name for m in pkgutil.iter_modules(domains.__path__) if m.ispkg)


def load_domain(name: str) -> Domain:
    """Import `domains.<name>.app` and return its `domain`."""
    try:
        module = importlib.import_module(f"domains.{name}.app")
    except ModuleNotFoundError as error:
        if error.name in (f"domains.{name}", f"domains.{name}.app"):
            raise ConfigurationError(
                f"no domain {name!r}: expected domains/{name}/app.py "
                f"(known: {', '.join(domain_names()) or 'none'})"
            ) from None
        raise
    domain = getattr(module, "domain", None)
    if not isinstance(domain, Domain) or domain.name != name:
        raise ConfigurationError(f"domains/{name}/app.py must define domain = Domain({name!r})")
    return domain


def load_domains(names: Sequence[str] | None = None) -> list[Domain]:
    """The named domains, or all of them."""
    return [load_domain(n) for n in (names or domain_names())]
