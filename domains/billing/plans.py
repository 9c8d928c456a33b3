"""The plans a customer may subscribe to, and the arithmetic of money over a billing period.

Amounts are integers in the currency's minor unit; proration rounds down (in the
customer's favour) and never goes through a float.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan's price per monthly period."""

    name: str
    amount: int
    currency: str


PLANS: dict[str, Plan] = {
    "pro": Plan("pro", 1500, "EUR"),
    "business": Plan("business", 4900, "EUR"),
}


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` moved by whole calendar months, its day clamped to the month's last (a
    subscription started on the 31st renews on the 30th, or on the 28th in February)."""
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def prorate(
    old: Plan, new: Plan, period_start: datetime, period_end: datetime, now: datetime
) -> int:
    """What changing from `old` to `new` at `now` costs for the rest of the period: positive
    to invoice, negative to credit. The unused share of the old price is credited and the
    remaining share of the new one charged, by whole seconds."""
    if old.currency != new.currency:
        raise ValueError(f"cannot prorate {old.currency} against {new.currency}")
    total = int((period_end - period_start).total_seconds())
    remaining = max(0, int((period_end - now).total_seconds()))
    difference = (new.amount - old.amount) * remaining
    return difference // total if difference >= 0 else -((-difference) // total)
