"""Mistakes in a handler or route fail when the decorator runs, not at the first delivery."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from bus import ConfigurationError, Context, Domain, Event, Request, Task


class Address(BaseModel):
    city: str
    country: str


class SignedUp(Event):
    type = "SIGNED_UP"
    email: str
    plan: str
    address: Address
    previous: list[Address] = []
    extra: dict[str, Any] = {}


class Left(Event):
    type = "LEFT"
    user_id: str


class Recount(Task):
    type = "RECOUNT"
    domain = "reg"


def test_a_plain_def_handler_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(TypeError, match=r"reg\.welcome .*async def"):

        @domain.on(SignedUp)  # type: ignore[type-var]
        def welcome(event: SignedUp, ctx: Context) -> None: ...


def test_a_plain_def_task_handler_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(TypeError, match="async def"):

        @domain.task(Recount)  # type: ignore[type-var]
        def recount(task: Recount, ctx: Context) -> None: ...


def test_a_plain_def_route_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(TypeError, match=r"reg\.profile .*async def"):

        @domain.get("/profile")  # type: ignore[type-var]
        def profile(request: Request[None], ctx: Context) -> dict[str, str]:
            return {}


def test_a_handler_without_ctx_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(TypeError, match=r"reg\.welcome .*\(event, ctx\)"):

        @domain.on(SignedUp)  # type: ignore[type-var]
        async def welcome(event: SignedUp) -> None: ...


def test_a_route_without_ctx_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(TypeError, match=r"\(request, ctx\)"):

        @domain.get("/profile")  # type: ignore[type-var]
        async def profile(request: Request[None]) -> None: ...


def test_a_handler_wanting_a_third_argument_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(TypeError, match="ctx"):

        @domain.on(SignedUp)  # type: ignore[type-var]
        async def welcome(event: SignedUp, ctx: Context, extra: int) -> None: ...


def test_handlers_taking_two_arguments_in_any_shape_register() -> None:
    domain = Domain("reg")

    @domain.on(SignedUp)
    async def plain(event: SignedUp, ctx: Context) -> None: ...

    @domain.on(SignedUp)
    async def variadic(*args: Any) -> None: ...

    @domain.on(SignedUp)
    async def with_default(event: SignedUp, ctx: Context, retries: int = 3) -> None: ...

    class Callable:
        __name__ = "callable_object"

        async def __call__(self, event: SignedUp, ctx: Context) -> None: ...

    domain.on(SignedUp)(Callable())
    assert len(domain.subscriptions) == 4


def test_a_handler_annotated_with_another_event_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(ConfigurationError, match=r"reg\.goodbye .*Left.*SIGNED_UP"):

        @domain.on(SignedUp)
        async def goodbye(event: Left, ctx: Context) -> None: ...


def test_a_handler_annotated_with_a_base_class_registers() -> None:
    domain = Domain("reg")

    @domain.on(SignedUp)
    async def audit(event: Event, ctx: Context) -> None: ...

    @domain.on(SignedUp)
    async def untyped(event, ctx):  # type: ignore[no-untyped-def]
        ...

    assert [s.name for s in domain.subscriptions] == ["reg.audit", "reg.untyped"]


def test_a_filter_on_a_field_the_event_lacks_is_refused() -> None:
    domain = Domain("reg")
    with pytest.raises(ConfigurationError, match=r"'emial'.*SignedUp.*email"):
        domain.on(SignedUp, where={"emial": [{"suffix": "@acme.com"}]})


@pytest.mark.parametrize(
    "where",
    [
        {"address": {"town": ["Oslo"]}},
        {"address.town": ["Oslo"]},
        {"previous": {"town": ["Oslo"]}},
        {"$or": [{"plan": ["pro"]}, {"emial": [{"exists": True}]}]},
        {"address": {"$or": [{"city": ["Oslo"]}, {"town": ["Oslo"]}]}},
    ],
)
def test_a_nested_filter_key_the_model_lacks_is_refused(where: dict[str, Any]) -> None:
    domain = Domain("reg")
    with pytest.raises(ConfigurationError, match="not a field"):
        domain.on(SignedUp, where=where)


@pytest.mark.parametrize(
    "where",
    [
        {"email": [{"suffix": "@acme.com"}]},
        {"address": {"city": ["Oslo"]}},
        {"address.country": ["NO"]},
        {"previous": {"city": ["Oslo"]}},
        {"extra": {"anything": ["goes"]}},
        {"$or": [{"plan": ["pro"]}, {"address.city": ["Oslo"]}]},
    ],
)
def test_filters_on_fields_the_event_has_register(where: dict[str, Any]) -> None:
    domain = Domain("reg")

    @domain.on(SignedUp, where=where)
    async def welcome(event: SignedUp, ctx: Context) -> None: ...

    assert domain.subscriptions[0].where == where


def test_websocket_handlers_must_be_async_and_take_ctx() -> None:
    domain = Domain("reg")

    async def connected(connection: Any, ctx: Context) -> None: ...

    def disconnected(connection_id: str, ctx: Context) -> None: ...

    with pytest.raises(TypeError, match=r"on_disconnect.*async def"):
        domain.websocket("/ws", on_connect=connected, on_disconnect=disconnected)  # type: ignore[arg-type]
