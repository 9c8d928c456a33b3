"""Cursor pagination as every domain's list routes take it: `?limit=` (1 to 100, default 20)
and an opaque `?cursor=` from the previous page, declared once as the route's query model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bus.errors import ConfigurationError, Rejected
from bus.storage.errors import InvalidRequest

if TYPE_CHECKING:
    from bus.domain import Request
    from bus.storage.conditions import Condition
    from bus.storage.table import Page, Table

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQuery(BaseModel):
    """`@domain.get(path, query=PageQuery)`: the router validates the query string (a 422
    problem for a limit outside 1 to 100 or a cursor over 2 KiB), OpenAPI documents both."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="items a page")
    cursor: str | None = Field(
        None, min_length=1, max_length=2048, description="where the previous page ended"
    )


def page_query(request: Request[Any]) -> PageQuery:
    """The validated `PageQuery` of a request to a route declared with `query=PageQuery`."""
    params = request.params
    if not isinstance(params, PageQuery):
        raise ConfigurationError("the route declares no query=PageQuery; add it to the route")
    return params


async def read_page(
    table: Table,
    key_condition: Condition,
    of: PageQuery,
    *,
    descending: bool = False,
    consistent: bool = False,
) -> Page:
    """The page of `table.query(key_condition)` that `of` asks for; a cursor this list never
    gave is the caller's mistake (a 422 problem), not the table's."""
    try:
        return await table.query(
            key_condition,
            limit=of.limit,
            cursor=of.cursor,
            descending=descending,
            consistent=consistent,
        )
    except InvalidRequest as error:
        raise Rejected("the cursor is not one this list gave") from error
