"""DynamoDB's error responses as the storage port's errors (`bus.storage.errors`), for the
table and for table creation alike."""

from __future__ import annotations

from botocore.exceptions import ClientError

from bus.storage.errors import (
    CancellationReason,
    ConditionFailed,
    InvalidRequest,
    ItemCollectionTooLarge,
    ItemTooLarge,
    StorageError,
    TableNotFound,
    TransactionCanceled,
    TransactionTooLarge,
)


def storage_error(error: ClientError) -> StorageError:
    """Our error for a DynamoDB error response."""
    code = error.response.get("Error", {}).get("Code", "")
    message = str(error.response.get("Error", {}).get("Message", error))
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(f"the condition was false; nothing was written ({message})")
    if code == "TransactionCanceledException":
        reasons = [
            CancellationReason(
                None if r.get("Code") in (None, "None") else r["Code"], r.get("Message")
            )
            for r in error.response.get("CancellationReasons", [])
        ]
        if any(_is_transaction_size_message(r.message or "") for r in reasons):
            return TransactionTooLarge(f"the transaction's items are over 4 MB ({message})")
        if any(_is_size_message(r.message or "") for r in reasons):
            return ItemTooLarge(f"an item in the transaction is over 400 KB ({message})")
        return TransactionCanceled(reasons)
    if code == "ItemCollectionSizeLimitExceededException":
        return ItemCollectionTooLarge(message)
    if code == "ResourceNotFoundException":
        return TableNotFound(message)
    if code == "ValidationException":
        if _is_transaction_size_message(message):
            return TransactionTooLarge(f"the transaction's items are over 4 MB ({message})")
        if _is_size_message(message):
            return ItemTooLarge(f"item over DynamoDB's 400 KB limit ({message})")
        return InvalidRequest(message)
    return StorageError(f"DynamoDB {code}: {message}")


def _is_size_message(message: str) -> bool:
    return "size" in message.lower() and "exceeded" in message.lower()


def _is_transaction_size_message(message: str) -> bool:
    """DynamoDB's refusal of a transaction over 4 MB. Its wording is not documented, so this
    matches what any wording would say: a transaction, and a size or the 4 MB."""
    lowered = message.lower()
    return "transaction" in lowered and ("size" in lowered or "4 mb" in lowered)
