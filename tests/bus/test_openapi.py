"""OpenAPI documents from routes: bodies, answers, path parameters and problem+json errors,
with two domains' models of one name kept apart."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from bus import ConfigurationError, Context, Domain, Request
from bus.access import Access
from bus.http import PROBLEM_JSON, ProblemType
from bus.openapi import domain_document, openapi_document
from bus.pagination import PageQuery, page_query
from tctf.config import load_domains


class Open(BaseModel):
    owner: str = Field(min_length=1)


class Account(BaseModel):
    account: str


def accounts(name: str = "accounts") -> Domain:
    domain = Domain(name)

    @domain.post(f"/{name}", response=Account, status=201)
    async def open_account(request: Request[Open], ctx: Context) -> Account:
        """Open an account."""
        return Account(account="a1")

    @domain.delete(f"/{name}/{{account_id}}")
    async def close_account(request: Request[None], ctx: Context) -> None:
        return None

    return domain


def test_a_route_documents_its_body_answer_and_errors() -> None:
    document = domain_document(accounts())
    operation = document["paths"]["/accounts"]["post"]
    assert document["openapi"] == "3.1.0"
    assert operation["operationId"] == "accounts.open_account"
    assert operation["summary"] == "Open an account."
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/accounts.Open"}
    answer = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/accounts.Account"}
    schemas = document["components"]["schemas"]
    assert schemas["accounts.Open"]["properties"]["owner"]["minLength"] == 1
    errors = {code for code, r in operation["responses"].items() if PROBLEM_JSON in r["content"]}
    assert errors == {"400", "401", "404", "409", "413", "422", "429", "500", "503"}
    assert "security" not in operation


def test_path_parameters_are_required_strings_and_no_body_means_no_400() -> None:
    operation = domain_document(accounts())["paths"]["/accounts/{account_id}"]["delete"]
    (parameter,) = operation["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "account_id",
        "path",
        True,
    )
    assert "requestBody" not in operation
    assert "400" not in operation["responses"] and "204" in operation["responses"]


def test_the_problem_schema_names_every_stable_type() -> None:
    problem = domain_document(accounts())["components"]["schemas"]["Problem"]
    assert problem["properties"]["type"]["enum"] == [kind.value for kind in ProblemType]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_two_domains_on_one_method_and_path_are_refused() -> None:
    first, second = accounts("accounts"), accounts("ledger")

    @second.post("/accounts")
    async def shadow(request: Request[None], ctx: Context) -> None:
        return None

    with pytest.raises(ConfigurationError, match="POST /accounts"):
        openapi_document([first, second])


def test_merged_documents_keep_each_domains_models_apart() -> None:
    document = openapi_document([accounts("accounts"), accounts("ledger")])
    assert {"accounts.Account", "ledger.Account"} <= set(document["components"]["schemas"])
    assert [tag["name"] for tag in document["tags"]] == ["accounts", "ledger"]


def test_the_documents_are_valid_openapi_3_1() -> None:
    validate(openapi_document([accounts("accounts"), accounts("ledger")]))
    validate(openapi_document(load_domains()))


def test_a_signed_in_route_names_the_bearer_scheme_with_its_scopes_and_answers_403() -> None:
    domain = Domain("vault")

    @domain.get("/audit", access=Access(scopes=("audit",)))
    async def audit(request: Request[None], ctx: Context) -> None:
        """Read the audit."""

    document = openapi_document([domain])
    operation = document["paths"]["/audit"]["get"]
    assert operation["security"] == [{"bearer": ["audit"]}]
    assert {"401", "403"} <= operation["responses"].keys()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


class TokenError(BaseModel):
    error: str


def test_an_answer_the_route_gives_itself_is_documented_beside_the_problem_it_may_be() -> None:
    domain = Domain("tokens")

    @domain.post("/tokens", response=Account, answers={400: TokenError, 401: TokenError})
    async def issue(request: Request[Open], ctx: Context) -> Account:
        return Account(account="t1")

    document = domain_document(domain)
    validate(document)
    responses = document["paths"]["/tokens"]["post"]["responses"]
    own = {"$ref": "#/components/schemas/tokens.TokenError"}
    assert responses["400"]["content"]["application/json"]["schema"] == own
    assert PROBLEM_JSON in responses["400"]["content"]
    assert responses["401"]["content"]["application/json"]["schema"] == own
    assert "tokens.TokenError" in document["components"]["schemas"]


class Grant(BaseModel):
    grant_type: str


def test_a_route_taking_forms_documents_both_bodies_and_needs_a_model() -> None:
    domain = Domain("tokens")

    @domain.post("/token", forms=True)
    async def token(request: Request[Grant], ctx: Context) -> None:
        """Trade a grant."""

    content = openapi_document([domain])["paths"]["/token"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    with pytest.raises(ConfigurationError, match="takes forms but declares no body"):

        @domain.post("/nothing", forms=True)
        async def nothing(request: Request[None], ctx: Context) -> None: ...


def test_a_paged_route_validates_and_documents_limit_and_cursor() -> None:
    domain = Domain("notes")

    @domain.get("/notes", query=PageQuery)
    async def notes(request: Request[None], ctx: Context) -> dict[str, object]:
        """List notes."""
        page = page_query(request)
        return {"limit": page.limit, "cursor": page.cursor}

    parameters = openapi_document([domain])["paths"]["/notes"]["get"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    assert by_name["limit"]["in"] == "query" and by_name["limit"]["schema"]["maximum"] == 100
    assert by_name["cursor"]["schema"]["type"] == "string" and not by_name["cursor"]["required"]
