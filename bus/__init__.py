"""The messaging kernel: events, envelopes, domains, dispatch, transports and storage ports.

It knows nothing of AWS and nothing of any domain; everything public is re-exported here.
The in-memory transport and the runtime load on first use, so a Lambda that only dispatches
does not import them.
"""

from typing import TYPE_CHECKING, Any

from bus.clock import Clock, ManualClock, SystemClock
from bus.context import Context
from bus.dispatch import BatchResult, Dispatcher, Outcome, Publisher, Record
from bus.domain import Domain, DomainSettings, HttpRoute, Request, Storage, Subscription
from bus.envelope import Envelope
from bus.errors import (
    BatchTooLarge,
    BusError,
    ConfigurationError,
    Conflict,
    InvalidMessageData,
    MalformedEnvelope,
    MessageTooLarge,
    NotFound,
    PermanentError,
    Rejected,
    TransientError,
    UnknownMessageType,
    UnsupportedMessageVersion,
)
from bus.messages import Event, Message, Task
from bus.middleware import Delivery, Handler, IdempotencyStore, Middleware
from bus.topology import Topology
from bus.transport import DeadLetter, Transport

__all__ = [
    "BatchResult",
    "BatchTooLarge",
    "BusError",
    "Clock",
    "ConfigurationError",
    "Conflict",
    "Context",
    "DeadLetter",
    "Delivery",
    "Dispatcher",
    "Domain",
    "DomainSettings",
    "Envelope",
    "Event",
    "Faults",
    "Handler",
    "HttpRoute",
    "IdempotencyStore",
    "InMemoryTransport",
    "InvalidMessageData",
    "MalformedEnvelope",
    "ManualClock",
    "Message",
    "MessageTooLarge",
    "Middleware",
    "NotFound",
    "Outcome",
    "PermanentError",
    "Publisher",
    "Record",
    "Rejected",
    "Request",
    "Runtime",
    "Storage",
    "Subscription",
    "SystemClock",
    "Task",
    "Topology",
    "TransientError",
    "Transport",
    "UnknownMessageType",
    "UnsupportedMessageVersion",
]

_LAZY = {"Faults": "bus.memory", "InMemoryTransport": "bus.memory", "Runtime": "bus.runtime"}

if TYPE_CHECKING:
    from bus.memory import Faults, InMemoryTransport
    from bus.runtime import Runtime


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bus' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
