"""Domain HTTP routes: validation as problem+json, 404/405, events leaving only on success,
the body model from the handler's annotation, a correlation id in every answer."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel, Field

from bus import (
    ConfigurationError,
    Conflict,
    Context,
    Domain,
    Event,
    NotFound,
    Rejected,
    Request,
    Storage,
    Task,
)
from bus.errors import InvalidMessageData
from bus.http import PROBLEM_JSON, HttpRequest, HttpResponse, HttpRouter
from bus.pagination import PageQuery, page_query
from bus.storage import Attr
from bus.testing import Harness


class Opened(Event):
    type = "OPENED"
    account: str


class Open(BaseModel):
    owner: str = Field(min_length=1)
    limit: int = Field(ge=0)


class Account(BaseModel):
    account: str
    owner: str


def accounts() -> Domain:
    domain = Domain("accounts")

    @domain.post("/accounts", body=Open, response=Account, status=201)
    async def open_account(request: Request[Open], ctx: Context) -> Account:
        if request.body.owner == "banned":
            raise Rejected("owner is banned")
        ctx.publish(Opened(account="a1"))
        if request.body.owner == "crash":
            raise RuntimeError("database down")
        return Account(account="a1", owner=request.body.owner)

    @domain.get("/accounts/{account_id}", response=Account)
    async def get_account(request: Request[None], ctx: Context) -> Account:
        return Account(account=request.path_params["account_id"], owner=request.query["as"])

    @domain.get("/statements", query=PageQuery)
    async def list_accounts(request: Request[None], ctx: Context) -> dict[str, object]:
        page = page_query(request)
        return {"limit": page.limit, "cursor": page.cursor}

    return domain


async def call(h: Harness, method: str, path: str, body: object = None, **query: str):  # type: ignore[no-untyped-def]
    router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
    raw = body if isinstance(body, bytes) else (b"" if body is None else orjson.dumps(body))
    return await router.handle(HttpRequest(method, path, query=query, body=raw))


async def test_valid_request_runs_the_handler_and_publishes() -> None:
    async with Harness(accounts()) as h:
        response = await call(h, "POST", "/accounts", {"owner": "ada", "limit": 5})
    assert response.status == 201 and response.json() == {"account": "a1", "owner": "ada"}
    assert [e.type for e in h.published] == ["OPENED"]
    assert response.headers["x-correlation-id"] == h.published[0].correlationid


async def test_invalid_body_is_a_422_problem_listing_every_field() -> None:
    async with Harness(accounts()) as h:
        response = await call(h, "POST", "/accounts", {"owner": "", "limit": -1})
    assert response.status == 422 and response.headers["content-type"] == PROBLEM_JSON
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["owner", "limit"]
    assert h.published == []


async def test_malformed_json_is_a_400_problem() -> None:
    async with Harness(accounts()) as h:
        response = await call(h, "POST", "/accounts", b'{"owner": ')
    assert response.status == 400 and response.json()["detail"] == "request body is not valid JSON"


async def test_unknown_route_is_404_and_wrong_method_is_405_with_allow() -> None:
    async with Harness(accounts()) as h:
        missing = await call(h, "GET", "/nothing")
        wrong = await call(h, "DELETE", "/accounts")
    assert missing.status == 404 and missing.headers["content-type"] == PROBLEM_JSON
    assert wrong.status == 405 and wrong.headers["allow"] == "POST"


async def test_path_parameters_and_query_reach_the_handler() -> None:
    async with Harness(accounts()) as h:
        response = await call(h, "GET", "/accounts/a42", **{"as": "ada"})
    assert response.json() == {"account": "a42", "owner": "ada"}


async def test_a_paged_routes_query_is_validated_before_its_handler_runs() -> None:
    async with Harness(accounts()) as h:
        default = await call(h, "GET", "/statements")
        given = await call(h, "GET", "/statements", limit="5", cursor="c1", other="ignored")
        too_many = await call(h, "GET", "/statements", limit="101")
        not_a_number = await call(h, "GET", "/statements", limit="ten")
    assert default.json() == {"limit": 20, "cursor": None}
    assert given.json() == {"limit": 5, "cursor": "c1"}
    for refused in (too_many, not_a_number):
        assert refused.status == 422 and refused.headers["content-type"] == PROBLEM_JSON
        assert refused.json()["type"] == "urn:tctf:problem:invalid-query"
        assert refused.json()["errors"][0]["field"] == "limit"


async def test_a_rejected_request_is_422_and_a_crash_is_500_and_neither_publishes() -> None:
    async with Harness(accounts()) as h:
        rejected = await call(h, "POST", "/accounts", {"owner": "banned", "limit": 1})
        crashed = await call(h, "POST", "/accounts", {"owner": "crash", "limit": 1})
    assert rejected.status == 422 and rejected.json()["detail"] == "owner is banned"
    assert crashed.status == 500 and "correlation_id" in crashed.json()
    assert h.published == []


class Note(BaseModel):
    text: str


async def test_an_event_too_large_to_publish_is_a_422_and_nothing_leaves() -> None:
    notes = Domain("notes")

    @notes.post("/notes", body=Note, status=202)
    async def add(request: Request[Note], ctx: Context) -> None:
        ctx.publish(Opened(account=request.body.text))

    async with Harness(notes) as h:
        response = await call(h, "POST", "/notes", {"text": "x" * 300_000})
    assert response.status == 422 and "too large" in response.json()["detail"]
    assert h.published == []


async def test_an_answer_the_response_model_refuses_is_a_500_before_anything_leaves() -> None:
    notes = Domain("notes")

    @notes.post("/notes", body=Note, response=Account)
    async def add(request: Request[Note], ctx: Context) -> dict[str, str]:
        ctx.publish(Opened(account="a1"))
        return {"account": "a1"}  # no owner

    async with Harness(notes) as h:
        response = await call(h, "POST", "/notes", {"text": "hi"})
    assert response.status == 500 and h.published == []


def ledger() -> Domain:
    """Routes that answer each 4xx a handler can cause, and a 500."""
    domain = Domain("ledger")

    @domain.post("/entries", status=201)
    async def add_entry(request: Request[Note], ctx: Context) -> Note:
        if request.body.text == "twice":
            raise Conflict("already recorded")
        if request.body.text == "never":
            raise Rejected("not an entry")
        if request.body.text == "crash":
            raise RuntimeError("bug")
        return request.body

    @domain.get("/entries/{entry_id}")
    async def get_entry(request: Request[None], ctx: Context) -> None:
        raise NotFound(f"no entry {request.path_params['entry_id']}")

    return domain


async def test_every_problem_answer_names_the_requests_correlation_id() -> None:
    async with Harness(ledger()) as h:
        router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)

        async def answer(method: str, path: str, body: object = None) -> HttpResponse:
            raw = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
            headers = {"X-Correlation-Id": "order-7"}
            return await router.handle(HttpRequest(method, path, headers=headers, body=raw))

        answers = {
            400: await answer("POST", "/entries", b'{"text": '),
            404: await answer("GET", "/entries/e1"),
            405: await answer("DELETE", "/entries"),
            409: await answer("POST", "/entries", {"text": "twice"}),
            422: await answer("POST", "/entries", {"text": 1}),
            500: await answer("POST", "/entries", {"text": "crash"}),
        }
        unrouted = await answer("GET", "/nowhere")

    for status, response in [*answers.items(), (404, unrouted)]:
        assert response.status == status
        assert response.headers["x-correlation-id"] == "order-7", status
        assert response.json()["correlation_id"] == "order-7", status


async def test_a_request_without_a_correlation_id_gets_a_new_one_even_when_no_route_matches() -> (
    None
):
    async with Harness(ledger()) as h:
        router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
        first = await router.handle(HttpRequest("GET", "/nowhere"))
        second = await router.handle(HttpRequest("GET", "/nowhere"))

    assert first.headers["x-correlation-id"] != second.headers["x-correlation-id"]
    assert first.json()["correlation_id"] == first.headers["x-correlation-id"]


async def test_the_body_model_is_read_from_the_handlers_request_annotation() -> None:
    async with Harness(ledger()) as h:
        created = await call(h, "POST", "/entries", {"text": "rent"})
        refused = await call(h, "POST", "/entries", {"words": "rent"})

    assert created.status == 201 and created.json() == {"text": "rent"}
    assert refused.status == 422 and [e["field"] for e in refused.json()["errors"]] == ["text"]
    (route, _) = ledger().http_routes
    assert route.body is Note


def test_a_body_model_named_twice_must_be_the_same() -> None:
    domain = Domain("ledger")

    with pytest.raises(ConfigurationError, match=r"takes Request\[Note\] but declares body=Open"):

        @domain.post("/entries", body=Open)
        async def add_entry(request: Request[Note], ctx: Context) -> None: ...


def test_a_request_body_is_a_pydantic_model() -> None:
    domain = Domain("ledger")

    with pytest.raises(ConfigurationError, match="a body is a pydantic model"):

        @domain.post("/entries")
        async def add_entry(request: Request[dict[str, str]], ctx: Context) -> None: ...


async def test_every_answer_forbids_sniffing_and_caching() -> None:
    async with Harness(ledger()) as h:
        answers = [
            await call(h, "POST", "/entries", {"text": "rent"}),
            await call(h, "POST", "/entries", {"text": 1}),
            await call(h, "GET", "/entries/e1"),
            await call(h, "DELETE", "/entries"),
            await call(h, "POST", "/entries", {"text": "twice"}),
            await call(h, "POST", "/entries", {"text": "never"}),
            await call(h, "POST", "/entries", {"text": "crash"}),
            await call(h, "GET", "/nowhere"),
        ]

    assert [a.status for a in answers] == [201, 422, 404, 405, 409, 422, 500, 404]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.status
        assert answer.headers["cache-control"] == "no-store", answer.status


def vault() -> Domain:
    """Routes whose failures carry internal keys, event types and ids in their messages."""
    domain = Domain("vault", storage=Storage())

    @domain.put("/secrets/{name}", status=204)
    async def keep(request: Request[Note], ctx: Context) -> None:
        item = {"PK": f"SECRET#{request.path_params['name']}", "SK": "v1"}
        await ctx.table.put(item, condition=Attr("PK").not_exists())

    @domain.post("/notes", status=202)
    async def note(request: Request[Note], ctx: Context) -> None:
        ctx.publish(Opened(account=request.body.text))

    @domain.post("/broken")
    async def broken(request: Request[None], ctx: Context) -> None:
        raise InvalidMessageData("EVENT#evt-41 of USER_CREATED does not validate")

    return domain


async def test_error_answers_never_echo_internal_keys_event_types_or_ids() -> None:
    async with Harness(vault()) as h:
        await call(h, "PUT", "/secrets/s1", {"text": "a"})
        taken = await call(h, "PUT", "/secrets/s1", {"text": "b"})
        too_large = await call(h, "POST", "/notes", {"text": "x" * 300_000})
        internal = await call(h, "POST", "/broken")

    assert (taken.status, too_large.status, internal.status) == (409, 422, 422)
    for answer in (taken, too_large, internal):
        text = answer.body.decode()
        for secret in ("SECRET#", "OPENED", "EVENT#", "evt-41", "USER_CREATED"):
            assert secret not in text, (answer.status, text)
    assert h.published == []
    assert "too large" in too_large.json()["detail"]


class Shred(Task):
    type = "SHRED_SECRETS"
    domain = "wiring"


async def test_a_route_sending_what_its_domain_may_not_is_a_500_without_details() -> None:
    domain = Domain("wiring")

    @domain.post("/misconfigured")
    async def misconfigured(request: Request[None], ctx: Context) -> None:
        ctx.send(Shred())

    async with Harness(domain) as h:
        answer = await call(h, "POST", "/misconfigured")

    assert answer.status == 500 and "SHRED_SECRETS" not in answer.body.decode()
    assert h.published == []


class TokenError(BaseModel):
    error: str


async def test_a_route_answers_its_own_declared_shape_with_the_platforms_headers() -> None:
    domain = Domain("tokens")

    @domain.post("/tokens", body=Open, response=Account, answers={400: TokenError})
    async def issue(request: Request[Open], ctx: Context) -> Account | HttpResponse:
        if request.body.owner == "stranger":
            return HttpResponse(400, orjson.dumps({"error": "invalid_grant"}))
        return Account(account="t1", owner=request.body.owner)

    async with Harness(domain) as h:
        refused = await call(h, "POST", "/tokens", {"owner": "stranger", "limit": 1})
    assert refused.status == 400 and refused.json() == {"error": "invalid_grant"}
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["cache-control"] == "no-store" and "x-correlation-id" in refused.headers


async def routed_with(h: Harness, correlation_id: str) -> HttpResponse:
    router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
    body = orjson.dumps({"owner": "ada", "limit": 5})
    headers = {"X-Correlation-Id": correlation_id}
    return await router.handle(HttpRequest("POST", "/accounts", headers=headers, body=body))


@pytest.mark.parametrize(
    "kept",
    ["signup-1", "0190b8c2-7a3e-7c1d-9f00-5a1b2c3d4e5f", "Root=1-5759e988:a/b+c.d_e", "x" * 256],
)
async def test_a_short_plain_correlation_id_is_kept(kept: str) -> None:
    async with Harness(accounts()) as h:
        response = await routed_with(h, kept)
    assert response.status == 201 and response.headers["x-correlation-id"] == kept
    assert h.published[0].correlationid == kept


@pytest.mark.parametrize(
    "refused",
    [
        "x" * 257,
        "x" * 5000,
        "two words",
        "line\r\nbreak",
        "tab\there",
        "caf\u00e9",
        "a@example.com",
    ],
)
async def test_a_long_or_odd_correlation_id_is_replaced_and_the_request_still_succeeds(
    refused: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="tctf.http")
    async with Harness(accounts()) as h:
        response = await routed_with(h, refused)
        await h.settle()
    fresh = response.headers["x-correlation-id"]
    assert response.status == 201 and fresh != refused and 0 < len(fresh) <= 256
    assert [e.correlationid for e in h.published] == [fresh]
    [line] = [r for r in caplog.records if "x-correlation-id" in r.getMessage()]
    assert fresh in line.getMessage() and refused not in line.getMessage()
