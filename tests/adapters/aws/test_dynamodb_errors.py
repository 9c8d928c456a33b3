"""DynamoDB's error responses become the storage port's errors, the ones InMemoryTable raises."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from adapters.aws.dynamodb_errors import storage_error
from bus.storage import InvalidRequest, ItemTooLarge, StorageError, TransactionTooLarge


def client_error(
    code: str, message: str, reasons: list[dict[str, str]] | None = None
) -> ClientError:
    response: dict[str, object] = {"Error": {"Code": code, "Message": message}}
    if reasons is not None:
        response["CancellationReasons"] = reasons
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type,unused-ignore]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # DynamoDB does not document its wording for the 4 MB limit: any mention of the
        # transaction's size is the limit.
        (client_error("ValidationException", "Transaction size exceeded the 4 MB limit"),
         TransactionTooLarge),
        (client_error("ValidationException", "Aggregate transaction size over 4 MB"),
         TransactionTooLarge),
        (client_error(
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[ValidationError]",
            [{"Code": "ValidationError", "Message": "Transaction size has exceeded 4 MB"}],
        ), TransactionTooLarge),
        (client_error("ValidationException", "Item size has exceeded the maximum allowed size"),
         ItemTooLarge),
        (client_error(
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[ValidationError]",
            [{"Code": "ValidationError",
              "Message": "Item size to update has exceeded the maximum allowed size"}],
        ), ItemTooLarge),
        (client_error(
            "ValidationException",
            "Transaction request cannot include multiple operations on one item",
        ), InvalidRequest),
    ],
    ids=[
        "transaction-size",
        "transaction-4mb",
        "transaction-size-reason",
        "item-size",
        "item-size-reason",
        "duplicate-item",
    ],
)  # fmt: skip
def test_dynamodb_size_refusals_map_to_the_ports_errors(
    error: ClientError, expected: type[StorageError]
) -> None:
    mapped = storage_error(error)
    assert type(mapped) is expected
