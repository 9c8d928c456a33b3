"""Errors raised by the bus kernel.

Every error the kernel raises is a `BusError`; each names what went wrong and what to do.
A `PermanentError` will fail the same way on every retry, so the record carrying it is parked
in its queue's DLQ at once, with the message as the reason.
"""

from __future__ import annotations

from typing import Any


class BusError(Exception):
    """Base class of every error raised by the bus."""


class PermanentError(BusError):
    """Retrying cannot help: the record goes to the dead-letter queue with this reason."""


class MalformedEnvelope(PermanentError):
    """The record body is not JSON, or not a CloudEvents envelope the bus can read."""


class UnknownMessageType(PermanentError):
    """No handler of the receiving domain handles this event or task type."""


class MisroutedRecord(PermanentError):
    """A record whose body is not what it was routed as (its `type` attribute or
    `detail-type` names another type), or a task that came from anywhere but its own domain's
    task queue: whoever put it there may not give that order."""


class UnsupportedMessageVersion(PermanentError):
    """The payload's `dataversion` cannot be read as the version the handler expects."""


class InvalidMessageData(PermanentError):
    """The payload does not validate against the model of its own version."""


class MessageTooLarge(PermanentError):
    """An encoded message exceeds the smallest size limit on its path."""

    def __init__(self, size: int, limit: int, service: str, what: str = "message") -> None:
        self.size = size
        self.limit = limit
        self.service = service
        super().__init__(
            f"{what} is {size} bytes, over the {service} limit of {limit} bytes; "
            "store large payloads elsewhere and publish a reference"
        )


class UnencodableMessage(PermanentError):
    """A message holds a value its consumers could not read back exactly (an integer beyond
    64 bits), or an envelope attribute they would refuse or drop (an id over 256 characters):
    refused when it is published, not parked by every consumer."""


class BatchTooLarge(BusError):
    """A batch call carries more entries than the service accepts."""

    def __init__(self, size: int, limit: int, service: str) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{service} takes at most {limit} entries per batch call, got {size}")


class Rejected(PermanentError):
    """Raised by a handler to park a record it will never be able to handle."""


class NotFound(Rejected):
    """Raised by a route handler for a resource that does not exist: HTTP 404."""


class Conflict(Rejected):
    """Raised by a route handler when the request clashes with current state: HTTP 409."""


class Unauthorized(Rejected):
    """Raised by a route handler when the caller's credentials are wrong: HTTP 401."""


class Forbidden(Rejected):
    """Raised by a route handler when the caller is known but may not do this: HTTP 403."""


class TooManyRequests(Rejected):
    """Raised by a route handler refusing a caller for a while: HTTP 429 with Retry-After."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(BusError):
    """Raised by a handler for a failure worth retrying in place (throttling, timeouts)."""


class HandlingInProgress(TransientError):
    """Another consumer is handling a copy of this event now; this copy is retried later."""


class AlreadyHandled(BusError):
    """Not a failure: the idempotency middleware skipped a call whose effect is recorded."""


class ConfigurationError(PermanentError):
    """Domains or settings that cannot be wired together; caught before anything runs where
    possible, and when met while handling a record, it is parked: no retry fixes code."""


class HandlerSignatureError(ConfigurationError, TypeError):
    """A handler or route the platform could not call as registered: not an `async def`,
    or not taking the (message or request, ctx) it is called with."""


class ClaimLost(BusError):
    """A handler's claim on its (handler, event id) is no longer its own: the lease ran out
    and another delivery took it, or its effect is already committed. Nothing it staged is
    written; the record is delivered again and the current holder's outcome decides."""


class OutboxNotDrained(BusError):
    """Committed outbox events stay pending although the relay keeps trying to publish them."""


class CallRefused(PermanentError):
    """Another domain's route answered 4xx: the same call would be refused again.

    `status` is its HTTP status and `problem` its problem+json document (None if none).
    """

    def __init__(self, message: str, status: int, problem: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class CallFailed(TransientError):
    """Another domain's route failed (5xx), could not be reached, or answered outside its
    contract: a later attempt may succeed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionGone(BusError):
    """A WebSocket connection a message was posted to is closed (API Gateway's
    `GoneException`): the caller forgets the connection, nothing is retried."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id} is gone")
        self.connection_id = connection_id


class MailRefused(TransientError):
    """The mail provider refused a message for now (throttled, unreachable): try again."""


class MailRejected(PermanentError):
    """The mail provider refused a message for good (rejected content, an unverified
    sender): sending it again cannot succeed."""
