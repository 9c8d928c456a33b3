"""The messaging kernel: events, envelopes, domains, dispatch, transports and storage ports.

It knows nothing of AWS and nothing of any domain; everything public is re-exported here.
"""

from bus.clock import Clock, ManualClock, SystemClock
from bus.context import Context
from bus.dispatch import BatchResult, Dispatcher, Outcome, Publisher, Record
from bus.domain import Domain, DomainSettings, Request, Route, Storage, Subscription
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
from bus.memory import Faults, InMemoryTransport
from bus.messages import Event, Message, Task
from bus.middleware import Delivery, Handler, IdempotencyStore, Middleware
from bus.runtime import Runtime
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
    "Route",
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
