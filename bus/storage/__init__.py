"""The storage port: one single-table store per domain, and a unit of work that writes
items and outgoing events in one transaction (the transactional outbox)."""

from bus.storage.conditions import Attr, Condition, Key
from bus.storage.errors import (
    CancellationReason,
    ConditionFailed,
    DuplicateTransactionItem,
    InvalidRequest,
    InvalidTransaction,
    ItemCollectionTooLarge,
    ItemTooLarge,
    StorageError,
    TableNotFound,
    TransactionCanceled,
    TransactionTooLarge,
)
from bus.storage.items import MAX_ITEM_SIZE, Item, item_size
from bus.storage.memory import InMemoryTable
from bus.storage.spec import GlobalIndex, KeyAttribute, KeyType, Projection, TableSpec
from bus.storage.table import (
    MAX_TRANSACTION_OPERATIONS,
    ConditionCheck,
    Delete,
    Page,
    Put,
    Table,
    TransactOperation,
    Update,
)

__all__ = [
    "MAX_ITEM_SIZE",
    "MAX_TRANSACTION_OPERATIONS",
    "Attr",
    "CancellationReason",
    "Condition",
    "ConditionCheck",
    "ConditionFailed",
    "Delete",
    "DuplicateTransactionItem",
    "GlobalIndex",
    "InMemoryTable",
    "InvalidRequest",
    "InvalidTransaction",
    "Item",
    "ItemCollectionTooLarge",
    "ItemTooLarge",
    "Key",
    "KeyAttribute",
    "KeyType",
    "Page",
    "Projection",
    "Put",
    "StorageError",
    "Table",
    "TableNotFound",
    "TableSpec",
    "TransactOperation",
    "TransactionCanceled",
    "TransactionTooLarge",
    "Update",
    "item_size",
]
