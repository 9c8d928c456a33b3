"""Rotating single-use tokens (refresh tokens): each kept in a table under its SHA-256, spent
once when exchanged for its successor, within a family (a session, a grant) that must still
be active; a token presented after it was spent is reuse, which the caller answers by ending
the family (RFC 9700 4.14.2).

The caller owns what a family is, what ending one means (its events, its reasons) and how
a refusal is told to the client; this module owns the items and the one transaction that
spends a token, so that of two exchanges of one token exactly one wins.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bus.storage.conditions import Attr
from bus.storage.errors import TransactionCanceled
from bus.storage.table import Table
from bus.storage.unit_of_work import UnitOfWork

__all__ = ["Exchange", "exchange", "token_item", "token_key"]

_PREFIX = "REFRESH#"
#: Attributes this module writes on a token's item; the caller's own are copied to the
#: successor as they are.
_OWN = frozenset({"PK", "SK", "status", "expires_at"})

Outcome = Literal["rotated", "invalid", "reused", "family_ended"]


def token_key(token: str) -> dict[str, str]:
    """The item of `token`: by its digest, so a read of the table reveals no usable token."""
    return {"PK": _PREFIX + hashlib.sha256(token.encode()).hexdigest(), "SK": "REFRESH"}


def token_item(token: str, *, expires_at: int, **attributes: Any) -> dict[str, Any]:
    """A new, current token's item, carrying the caller's `attributes` (its family's ids)."""
    return {**token_key(token), **attributes, "status": "current", "expires_at": expires_at}


@dataclass(frozen=True, slots=True)
class Exchange:
    """What presenting a token came to.

    `rotated`: `successor` replaces it. `invalid`: unknown, expired or not accepted by the
    caller's check (nothing changed). `reused`: it had been spent already, or another
    exchange spent it meanwhile: end its family. `family_ended`: its family is no longer
    active. `item` is the presented token's item (None when unknown).
    """

    outcome: Outcome
    item: Mapping[str, Any] | None = None
    successor: str | None = None


async def exchange(
    table: Table,
    token: str,
    *,
    now: int,
    lifetime: int,
    family: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    accept: Callable[[Mapping[str, Any]], bool] = lambda item: True,
) -> Exchange:
    """Spend `token` for a successor living `lifetime` seconds, if it is current, unexpired
    at `now`, passes `accept` (bound to this client, say), and the item at `family(item)`
    has `status` "active" — checked again in the transaction that spends it."""
    item = await table.get(token_key(token), consistent=True)
    if item is None or item["expires_at"] <= now or not accept(item):
        return Exchange("invalid", item)
    if item["status"] != "current":
        return Exchange("reused", item)
    family_key = family(item)
    owner = await table.get(family_key, consistent=True)
    if owner is None or owner.get("status") != "active":
        return Exchange("family_ended", item)
    successor = secrets.token_urlsafe(32)
    inherited = {name: value for name, value in item.items() if name not in _OWN}
    try:
        async with UnitOfWork(table, now=lambda: float(now)) as uow:
            uow.update(
                token_key(token), set={"status": "rotated"}, condition=Attr("status").eq("current")
            )
            uow.check(family_key, Attr("status").eq("active"))
            uow.put(token_item(successor, expires_at=now + lifetime, **inherited))
    except TransactionCanceled:
        return Exchange("reused", item)
    return Exchange("rotated", item, successor)
