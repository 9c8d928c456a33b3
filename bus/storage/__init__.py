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
from bus.storage.idempotency import TableIdempotencyStore
from bus.storage.items import MAX_ITEM_SIZE, Item, item_size
from bus.storage.memory import InMemoryTable
from bus.storage.outbox import OUTBOX_INDEX, OutboxRelay, outbox_index
from bus.storage.spec import GlobalIndex, KeyAttribute, KeyType, Projection, TableSpec
from bus.storage.table import (
    MAX_PAGE_SIZE,
    MAX_TRANSACTION_OPERATIONS,
    MAX_TRANSACTION_SIZE,
    ConditionCheck,
    Delete,
    Page,
    Put,
    Table,
    TransactOperation,
    Update,
)
from bus.storage.unit_of_work import OutgoingEvent, UnitOfWork

__all__ = [
    "MAX_ITEM_SIZE",
    "MAX_PAGE_SIZE",
    "MAX_TRANSACTION_OPERATIONS",
    "MAX_TRANSACTION_SIZE",
    "OUTBOX_INDEX",
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
    "OutboxRelay",
    "OutgoingEvent",
    "Page",
    "Projection",
    "Put",
    "StorageError",
    "Table",
    "TableIdempotencyStore",
    "TableNotFound",
    "TableSpec",
    "TransactOperation",
    "TransactionCanceled",
    "TransactionTooLarge",
    "UnitOfWork",
    "Update",
    "item_size",
    "outbox_index",
]
