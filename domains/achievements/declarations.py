"""The achievements the platform awards, declared as data and validated when the domain
loads (`rules.load_rules`). A new achievement is a new entry here; no code changes."""

from __future__ import annotations

from typing import Any

#: Paid invoices above this (EUR minor units) earn `big_spender`: the business plan does.
BIG_INVOICE = 4000

RULES: list[dict[str, Any]] = [
    {
        "id": "first_post",
        "title": "First post",
        "threshold": 1,
        "add": [{"event": "POST_CREATED", "user": "user_id", "item": "post_id"}],
    },
    {
        "id": "ten_followers",
        "title": "Ten followers",
        "threshold": 10,
        "add": [{"event": "USER_FOLLOWED", "user": "followee_id", "item": "follower_id"}],
        "remove": [{"event": "USER_UNFOLLOWED", "user": "followee_id", "item": "follower_id"}],
    },
    {
        "id": "first_invoice_paid",
        "title": "First invoice paid",
        "threshold": 1,
        "add": [{"event": "INVOICE_PAID", "user": "user_id", "item": "invoice_id"}],
    },
    {
        "id": "big_spender",
        "title": "Big spender",
        "threshold": 1,
        "add": [
            {
                "event": "INVOICE_PAID",
                "user": "user_id",
                "item": "invoice_id",
                "where": {"currency": ["EUR"], "amount": [{"numeric": [">", BIG_INVOICE]}]},
            }
        ],
    },
    {
        "id": "week_streak",
        "title": "Seven days in a row",
        "kind": "streak",
        "threshold": 7,
        "add": [{"event": "SIGNED_IN", "user": "user_id"}],
    },
]
