"""Errors raised by the storage port.

Every implementation of `Table` raises these, never a driver's own exceptions, so domain code
can handle a failed condition the same way in memory and on DynamoDB.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.errors import BusError

__all__ = [
    "CancellationReason",
    "ConditionFailed",
    "DuplicateTransactionItem",
    "InvalidRequest",
    "InvalidTransaction",
    "ItemCollectionTooLarge",
    "ItemTooLarge",
    "StorageError",
    "TableNotFound",
    "TransactionCanceled",
    "TransactionTooLarge",
]


class StorageError(BusError):
    """Base class of every error raised by a `Table` or a `UnitOfWork`."""


class InvalidRequest(StorageError):
    """The request can never succeed as written: a missing or mistyped key, an empty set,
    an update touching a key attribute, a malformed key condition. Fix the calling code."""


class ConditionFailed(StorageError):
    """A write's condition was false for the item as stored; nothing was written."""


@dataclass(frozen=True)
class CancellationReason:
    """Why one operation of a canceled transaction failed, at the same index as the operation.

    `code` mirrors DynamoDB's CancellationReasons codes ("ConditionalCheckFailed",
    "TransactionConflict", "ValidationError", ...) and is None for an operation that was fine
    but was canceled because another one failed.
    """

    code: str | None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.code is not None


class TransactionCanceled(StorageError):
    """A transaction wrote nothing because at least one operation failed.

    `reasons[i]` says what happened to operation `i`; `failed_indexes` lists the culprits.
    """

    def __init__(self, reasons: tuple[CancellationReason, ...] | list[CancellationReason]):
        self.reasons = tuple(reasons)
        codes = ", ".join(str(reason.code) for reason in self.reasons)
        super().__init__(
            f"transaction canceled, nothing was written; reasons per operation: [{codes}]"
        )

    @property
    def failed_indexes(self) -> list[int]:
        return [i for i, reason in enumerate(self.reasons) if reason.failed]


class ItemTooLarge(StorageError):
    """An item would exceed DynamoDB's 400 KB item size limit; store large payloads elsewhere
    (e.g. S3) and keep a reference in the item."""

    def __init__(self, message: str, size: int | None = None) -> None:
        self.size = size
        super().__init__(message)


class ItemCollectionTooLarge(StorageError):
    """An item collection (items sharing a partition key in a table with local secondary
    indexes) exceeded 10 GB; spread the items over more partition keys."""


class InvalidTransaction(InvalidRequest):
    """A transaction that DynamoDB would reject before evaluating any condition."""


class TransactionTooLarge(InvalidTransaction):
    """A transaction holds more than 100 operations, or its items add up to more than 4 MB;
    split the work or shrink it (large payloads belong elsewhere, e.g. S3)."""


class DuplicateTransactionItem(InvalidTransaction):
    """A transaction touches the same item twice; merge the operations on that item."""


class TableNotFound(StorageError):
    """The table does not exist; provision it first (`create_table(spec)` or `tctf up`)."""
