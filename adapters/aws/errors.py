"""Errors raised by the AWS adapters, each saying what failed and what to do about it."""

from __future__ import annotations

from bus.errors import BusError


class AwsTransportError(BusError):
    """Base class of the errors the SNS/SQS and EventBridge transports raise."""


class PublishFailed(AwsTransportError):
    """Entries of a batch call were still failing when the retries ran out."""

    def __init__(
        self,
        operation: str,
        failures: dict[str, str],
        attempts: int,
        *,
        sender_fault: bool = False,
    ) -> None:
        self.operation = operation
        self.failures = failures
        self.attempts = attempts
        #: AWS refused an entry as the sender's fault: the same entry fails the same way again.
        self.sender_fault = sender_fault
        listed = "; ".join(f"{what}: {why}" for what, why in list(failures.items())[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(
            f"{operation} failed for {len(failures)} entr{'y' if len(failures) == 1 else 'ies'} "
            f"after {attempts} attempt{'s' if attempts != 1 else ''}: {listed}{more}; "
            "nothing was lost from the caller's side: the call raised, so the handler that "
            "published will be retried"
        )


class NotSettled(AwsTransportError):
    """The queues still held messages when `settle()` gave up waiting."""


class NotProvisioned(AwsTransportError):
    """A queue or topic the topology names does not exist on the endpoint."""


class LocalEndpointError(AwsTransportError):
    """The local moto server could not be started."""
