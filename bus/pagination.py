"""Cursor pagination as every domain's list routes take it: `?limit=` (1 to 100, default 20)
and an opaque `?cursor=` from the previous page, declared once as the route's query model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bus.errors import ConfigurationError

if TYPE_CHECKING:
    from bus.domain import Request

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
