"""The messaging kernel: what a domain author writes against, in one import line.

    from bus import Context, Domain, Event, NotFound, Request, Storage, Task

Everything else — the dispatcher, envelopes, transports, the topology, middleware, the test
harness (`bus.testing`) — is machinery, imported from the module that owns it (see
docs/architecture.md). It knows nothing of AWS and nothing of any domain. Storage conditions
and `HttpResponse` load on first use, so a function whose domain keeps no state never
imports storage.
"""

from typing import TYPE_CHECKING, Any

from bus.context import Context
from bus.domain import Domain, DomainSettings, Request, Storage
from bus.errors import (
    ConfigurationError,
    Conflict,
    NotFound,
    PermanentError,
    Rejected,
    TransientError,
)
from bus.messages import Event, Task

__all__ = [
    "Attr",
    "ConditionFailed",
    "ConfigurationError",
    "Conflict",
    "Context",
    "Domain",
    "DomainSettings",
    "Event",
    "HttpResponse",
    "Key",
    "NotFound",
    "PermanentError",
    "Rejected",
    "Request",
    "Storage",
    "Task",
    "TransactionCanceled",
    "TransientError",
]

_LAZY = {
    "Attr": "bus.storage.conditions",
    "Key": "bus.storage.conditions",
    "ConditionFailed": "bus.storage.errors",
    "HttpResponse": "bus.http",
    "TransactionCanceled": "bus.storage.errors",
}

if TYPE_CHECKING:
    from bus.http import HttpResponse
    from bus.storage.conditions import Attr, Key
    from bus.storage.errors import ConditionFailed, TransactionCanceled


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(
            f"module 'bus' has no attribute {name!r}: machinery is imported from its module "
            "(docs/architecture.md says which)"
        )
    import importlib

    return getattr(importlib.import_module(module), name)
