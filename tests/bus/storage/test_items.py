"""Item values and sizes follow DynamoDB's documented rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bus.storage import (
    MAX_ITEM_SIZE,
    InMemoryTable,
    InvalidRequest,
    ItemTooLarge,
    TableSpec,
    Update,
)
from bus.storage.items import item_size, normalize_value


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"name": "Ada"}, 4 + 3),
        ({"é": "中"}, 2 + 3),
        ({"n": 12345}, 1 + 3 + 1),
        ({"n": 0}, 1 + 1 + 1),
        ({"n": -1_767_225_600}, 1 + 4 + 1),  # trailing zeros are not significant
        ({"n": 10**50}, 1 + 1 + 1),
        ({"n": 10**38 - 1}, 1 + 19 + 1),
        ({"n": Decimal("0.001")}, 1 + 1 + 1),
        ({"b": b"\x00\x01"}, 1 + 2),
        ({"t": True, "z": None}, 2 + 2),
        ({"l": []}, 1 + 3),
        ({"l": ["ab", 1]}, 1 + 3 + (2 + 1) + (2 + 1)),
        ({"m": {"k": "v"}}, 1 + 3 + (1 + 1 + 1)),
        ({"s": {"ab", "c"}}, 1 + 3),
    ],
)
def test_item_size_is_computed_as_dynamodb_documents(item: dict[str, object], size: int) -> None:
    assert item_size(item) == size


async def test_item_of_exactly_400kb_fits_and_one_byte_more_does_not() -> None:
    table = InMemoryTable(TableSpec("sizes"))
    overhead = item_size({"PK": "a", "SK": "1", "body": ""})

    await table.put({"PK": "a", "SK": "1", "body": "x" * (MAX_ITEM_SIZE - overhead)})
    with pytest.raises(ItemTooLarge) as too_large:
        await table.put({"PK": "a", "SK": "1", "body": "x" * (MAX_ITEM_SIZE - overhead + 1)})
    assert too_large.value.size == MAX_ITEM_SIZE + 1


async def test_an_update_counts_its_key_toward_4mb_not_the_item_it_leaves() -> None:
    # Counting the items updates leave would refuse what DynamoDB accepts (`carried_size`).
    table = InMemoryTable(TableSpec("sizes"))
    for n in range(11):
        await table.put({"PK": "a", "SK": str(n), "body": "x" * 390_000})

    await table.transact([Update({"PK": "a", "SK": str(n)}, add={"v": 1}) for n in range(11)])

    stored = [await table.get({"PK": "a", "SK": str(n)}) for n in range(11)]
    assert [item and item.get("v") for item in stored] == [1] * 11


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (1.0, 1),
        (-0.0, 0),
        (1_767_225_600.0, 1_767_225_600),
        (2.0**60, 1_152_921_504_606_847_000),  # its shortest repr, not its exact value
        (10**38 - 1, 10**38 - 1),
        (10**50, 10**50),
        (0.1, Decimal("0.1")),
        (Decimal("2.50"), Decimal("2.5")),
        (Decimal("1E+3"), 1000),
        ((1, "a"), [1, "a"]),
        (bytearray(b"x"), b"x"),
        (frozenset({1}), {1}),
    ],
)
def test_values_are_stored_in_canonical_form(value: object, stored: object) -> None:
    assert normalize_value(value) == stored
    assert type(normalize_value(value)) is type(stored)


@pytest.mark.parametrize("value", [10**38 + 1, float("inf"), {1, "a"}, object()])
def test_values_dynamodb_cannot_store_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest):
        normalize_value(value)
