"""`TableIdempotencyStore`: which (handler, event id) pairs have had their effect, kept in the
domain's own table and forgotten by TTL after `ttl_seconds`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bus.storage.errors import InvalidRequest
from bus.storage.spec import KeyType
from bus.storage.table import Table

__all__ = ["TableIdempotencyStore"]

_PREFIX = "IDEMPOTENCY#"


class TableIdempotencyStore:
    """An `IdempotencyStore` on a `Table`: one item per key,
    `PK="IDEMPOTENCY#<key>"`, `SK="IDEMPOTENCY"`, expiring `ttl_seconds` after it is marked.

    The table needs string keys and a TTL attribute. Keep `ttl_seconds` longer than the
    longest time a duplicate can arrive (SQS retention, at most 14 days).
    """

    def __init__(
        self,
        table: Table,
        *,
        ttl_seconds: float = 7 * 24 * 3600,
        now: Callable[[], float] = time.time,
    ) -> None:
        spec = table.spec
        if spec.ttl_attribute is None or any(
            attribute.type is not KeyType.STRING for attribute in spec.key_attributes
        ):
            raise InvalidRequest(
                f"table {spec.name!r} cannot hold idempotency records: it needs string keys "
                "and a TableSpec.ttl_attribute"
            )
        self._table = table
        self._ttl_attribute = spec.ttl_attribute
        self._ttl_seconds = ttl_seconds
        self._now = now

    async def is_done(self, key: str) -> bool:
        return await self._table.get(self._key(key), consistent=True) is not None

    async def mark_done(self, key: str) -> None:
        now = self._now()
        await self._table.put(
            {**self._key(key), "done_at": now, self._ttl_attribute: int(now + self._ttl_seconds)}
        )

    def _key(self, key: str) -> dict[str, Any]:
        names = self._table.spec.key_names
        values = (f"{_PREFIX}{key}", "IDEMPOTENCY")
        return dict(zip(names, values, strict=False))
