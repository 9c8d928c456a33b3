"""Batch calls of at most ten entries, retrying failed entries and unreachable endpoints.

SNS PublishBatch, SQS SendMessageBatch and EventBridge PutEvents all answer per entry; one
loop retries exactly the entries that failed, with exponential backoff, until a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from adapters.aws.errors import PublishFailed
from adapters.aws.session import AwsSettings
from bus.errors import PermanentError

log = logging.getLogger("adapters.aws")
E = TypeVar("E")
T = TypeVar("T")

#: Error codes AWS returns for a failure that a later attempt may not meet.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalErrorException",
        "KMSThrottlingException",
        "RequestThrottled",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
    }
)


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """One entry the service refused: its batch id, AWS's code and message, and whose fault."""

    id: str
    code: str
    message: str
    sender_fault: bool = False


#: Sends one batch (ids are the entries' positions as strings) and returns the refused ones.
BatchCall = Callable[[Sequence[tuple[str, E]]], Awaitable[list[EntryFailure]]]


def is_transient(error: BaseException) -> bool:
    """True for an error worth retrying: no connection, a timeout, throttling, a 5xx."""
    if isinstance(error, ConnectionError | HTTPClientError | OSError):
        return True
    if isinstance(error, ClientError):
        response: dict[str, Any] = error.response
        code = response.get("Error", {}).get("Code", "")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500
    return False


def never_publishable(error: Exception) -> bool:
    """True when a publish failed in a way that retrying cannot mend: the envelope is
    unreadable or over the size limit (`PermanentError`), or the service refused it as the
    sender's fault (`PublishFailed` with `sender_fault` set), so the same envelope meets the
    same answer. Whoever holds such an envelope parks it rather than retrying it."""
    return isinstance(error, PermanentError) or getattr(error, "sender_fault", False) is True


class Backoff:
    """Exponential delays until a deadline: `await backoff.wait()` is False once it passed."""

    def __init__(self, settings: AwsSettings) -> None:
        self._settings = settings
        self._deadline = time.monotonic() + settings.retry_deadline
        self._delay = settings.backoff
        self.attempts = 1

    async def wait(self) -> bool:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(self._delay, remaining))
        self._delay = min(self._delay * 2, self._settings.max_backoff)
        self.attempts += 1
        return True


async def retrying(
    settings: AwsSettings, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> T:
    """Call through an outage: transient errors are retried until the retry deadline."""
    backoff: Backoff | None = None
    while True:
        try:
            return await call(*args, **kwargs)
        except Exception as error:
            if not is_transient(error):
                raise
            backoff = backoff or Backoff(settings)
            if not await backoff.wait():
                raise


async def put_in_batches(
    operation: str,
    entries: Sequence[tuple[str, E]],
    call: BatchCall[E],
    settings: AwsSettings,
    batch_size: int = 10,
    *,
    size: Callable[[E], int] | None = None,
    max_batch_bytes: int | None = None,
) -> None:
    """Send `(label, entry)` pairs `batch_size` at a time, and no more than `max_batch_bytes`
    of them (by `size`) in one call, as AWS caps a batch request's total; raise
    `PublishFailed` if any entry is refused by the sender's fault or still failing at the
    deadline."""
    for batch in split_into_batches(entries, batch_size, size, max_batch_bytes):
        await _put_batch(operation, batch, call, settings)


def split_into_batches(
    entries: Sequence[tuple[str, E]],
    batch_size: int,
    size: Callable[[E], int] | None = None,
    max_batch_bytes: int | None = None,
) -> list[Sequence[tuple[str, E]]]:
    """`(label, entry)` pairs in request-sized batches, in order: at most `batch_size` each,
    and (when `size` and `max_batch_bytes` are given) at most that many bytes."""
    if size is None or max_batch_bytes is None:
        return [entries[i : i + batch_size] for i in range(0, len(entries), batch_size)]
    batches: list[Sequence[tuple[str, E]]] = []
    batch: list[tuple[str, E]] = []
    total = 0
    for pair in entries:
        bytes_ = size(pair[1])
        if batch and (len(batch) == batch_size or total + bytes_ > max_batch_bytes):
            batches.append(batch)
            batch, total = [], 0
        batch.append(pair)
        total += bytes_
    if batch:
        batches.append(batch)
    return batches


async def _put_batch(
    operation: str,
    batch: Sequence[tuple[str, E]],
    call: BatchCall[E],
    settings: AwsSettings,
) -> None:
    pending = {str(i): entry for i, entry in enumerate(batch)}
    backoff = Backoff(settings)
    last: dict[str, str] = {}
    while True:
        try:
            failures = await call([(i, entry) for i, (_, entry) in pending.items()])
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("%s: %s; retrying", operation, error)
            last = {pending[i][0]: f"{type(error).__name__}: {error}" for i in pending}
        else:
            refused = {f.id: f for f in failures if f.id in pending}
            last = {pending[i][0]: f"{f.code}: {f.message}" for i, f in refused.items()}
            permanent = {i for i, f in refused.items() if f.sender_fault}
            if permanent:
                raise PublishFailed(operation, last, backoff.attempts, sender_fault=True)
            pending = {i: pending[i] for i in refused}
            if not pending:
                return
            log.warning("%s: %d entries failed; retrying", operation, len(pending))
        if not await backoff.wait():
            raise PublishFailed(operation, last, backoff.attempts)
