"""API Gateway HTTP API (payload 2.0) requests to the domain's routes, in AWS's answer shape."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import Context, Domain, Request, Task
from bus.http import HARDENING_HEADERS
from bus.observability import configure_logging
from bus.storage.rotation import token_item
from domains.auth_core.app import signing_keys

from .conftest import LAMBDA_GO, POWERTOOLS, LambdaContext, Published, sample

HTTP_SAMPLES = [
    *sorted(POWERTOOLS.glob("apiGatewayProxyV2*.json")),
    *sorted(LAMBDA_GO.glob("apigw-v2-request-*.json")),
]


def _request(method: str, path: str, body: str | None = None, **extra: object) -> dict:  # type: ignore[type-arg]
    event = sample(POWERTOOLS / "apiGatewayProxyV2Event.json")
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["body"] = body
    event.update(extra)
    return event


def _answer(app: LambdaApp, event: dict[str, Any]) -> dict[str, Any]:
    """The function's answer to an HTTP event, which is always one (never None)."""
    response = app(event, LambdaContext())
    assert response is not None
    return response


@pytest.mark.parametrize("path", HTTP_SAMPLES, ids=lambda p: p.name)
def test_every_http_api_sample_is_answered_in_api_gateways_shape_without_a_500(
    path: Path, app: LambdaApp
) -> None:
    event = sample(path)

    response = _answer(app, event)

    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["isBase64Encoded"] is False
    assert response["statusCode"] == 404
    assert response["headers"]["content-type"] == "application/problem+json"
    assert response["headers"].keys() == {"content-type", "x-correlation-id", *HARDENING_HEADERS}
    problem = json.loads(response["body"])
    method = event["requestContext"]["http"]["method"]
    assert problem["detail"] == f"no route matches {method} {event['rawPath']}"


def test_post_validates_the_body_and_publishes(app: LambdaApp, published: Published) -> None:
    event = _request("POST", "/items", json.dumps({"sku": "A-1", "quantity": 2}))

    response = _answer(app, event)

    assert response["statusCode"] == 201
    assert response["isBase64Encoded"] is False
    assert response["headers"]["content-type"] == "application/json"
    assert json.loads(response["body"]) == {
        "sku": "A-1",
        "query": {"parameter1": "value1,value2", "parameter2": "value"},
    }
    assert [e.type for e in published.events] == ["ITEM_RESERVED"]
    assert published.events[0].correlationid == response["headers"]["x-correlation-id"]


def test_an_oversized_correlation_header_is_replaced_and_the_events_carry_the_new_id(
    app: LambdaApp, published: Published
) -> None:
    event = _request("POST", "/items", json.dumps({"sku": "A-1", "quantity": 2}))
    event["headers"]["X-Correlation-Id"] = "c" * 5000

    response = _answer(app, event)

    fresh = response["headers"]["x-correlation-id"]
    assert response["statusCode"] == 201 and 0 < len(fresh) <= 256
    assert [e.correlationid for e in published.events] == [fresh]


def test_base64_body_is_decoded(app: LambdaApp) -> None:
    raw = base64.b64encode(json.dumps({"sku": "B-2", "quantity": 1}).encode()).decode()
    event = _request("POST", "/items", raw, isBase64Encoded=True)

    assert _answer(app, event)["statusCode"] == 201


def test_invalid_base64_body_is_a_400_naming_the_callers_correlation_id(app: LambdaApp) -> None:
    event = _request("POST", "/items", "not base64!!", isBase64Encoded=True)
    event["headers"]["X-Correlation-Id"] = "order-7"

    response = _answer(app, event)
    assert response["statusCode"] == 400
    assert response["headers"]["x-correlation-id"] == "order-7"
    assert json.loads(response["body"])["detail"] == "request body is not valid base64"
    assert response["headers"]["x-content-type-options"] == "nosniff"


def test_invalid_body_is_a_422_listing_the_fields(app: LambdaApp) -> None:
    event = _request("POST", "/items", json.dumps({"sku": "", "quantity": 0}))

    response = _answer(app, event)

    assert response["statusCode"] == 422
    assert response["headers"]["content-type"] == "application/problem+json"
    assert response["headers"].keys() == {"content-type", "x-correlation-id", *HARDENING_HEADERS}
    fields = [e["field"] for e in json.loads(response["body"])["errors"]]
    assert fields == ["sku", "quantity"]


def test_non_json_body_is_a_400(app: LambdaApp) -> None:
    response = _answer(app, _request("POST", "/items", "{nope"))
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["detail"] == "request body is not valid JSON"


def test_wrong_method_is_a_405_with_allow(app: LambdaApp) -> None:
    response = _answer(app, _request("DELETE", "/items"))
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "POST"


def test_path_parameters_headers_and_named_stage_prefix(app: LambdaApp) -> None:
    event = sample(LAMBDA_GO / "apigw-v2-request-no-authorizer.json")
    event["requestContext"]["stage"] = "prod"
    event["rawPath"] = "/prod/items/C-3"
    event["requestContext"]["http"]["method"] = "GET"
    event["headers"] = {"User-Agent": "curl/8"}

    response = _answer(app, event)

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"sku": "C-3", "agent": "curl/8"}


@pytest.mark.parametrize(("raw", "sku"), [("/items/a%20b", "a b"), ("/items/caf%C3%A9", "café")])
def test_the_path_is_percent_decoded_as_the_local_asgi_server_decodes_it(
    app: LambdaApp, raw: str, sku: str
) -> None:
    event = _request("GET", raw)
    event["requestContext"]["stage"] = "prod"
    event["rawPath"] = f"/prod{raw}"

    response = _answer(app, event)

    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["sku"] == sku


def test_a_route_sending_a_task_its_domain_does_not_declare_is_a_500(
    published: Published,
) -> None:
    domain = Domain("inventory")

    @domain.post("/restock", status=202)
    async def restock(request: Request[None], ctx: Context) -> None:
        ctx.send(Restock(sku="A-1"))

    app = LambdaApp(domain, published)
    try:
        response = _answer(app, _request("POST", "/restock"))
    finally:
        app.close()

    assert response["statusCode"] == 500 and "RESTOCK" not in response["body"]
    assert published.tasks == []


class Restock(Task):
    type = "RESTOCK"
    domain = "inventory"
    sku: str


def test_a_signed_in_route_trusts_the_claims_api_gateways_jwt_authorizer_verified(
    app: LambdaApp,
) -> None:
    event = _signed_in_sample()
    event["requestContext"]["authorizer"]["jwt"]["claims"] = {"sub": "u-1", "roles": "[ops admin]"}

    response = _answer(app, event)

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"sub": "u-1", "roles": ["admin", "ops"]}


def test_a_signed_in_route_without_an_authorizers_claims_is_401(app: LambdaApp) -> None:
    event = _signed_in_sample()
    del event["requestContext"]["authorizer"]
    event["headers"]["authorization"] = "Bearer unverified.token.here"

    response = _answer(app, event)

    assert response["statusCode"] == 401


def _signed_in_sample() -> dict[str, Any]:
    event = sample(LAMBDA_GO / "apigw-v2-request-jwt-authorizer.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/me"
    return event


def test_an_internal_route_answers_a_call_api_gateway_admitted_by_iam(app: LambdaApp) -> None:
    signed = sample(LAMBDA_GO / "apigw-v2-request-iam.json")
    signed["rawPath"] = signed["requestContext"]["http"]["path"] = "/internal/stock"
    bearer = _signed_in_sample()
    bearer["rawPath"] = bearer["requestContext"]["http"]["path"] = "/internal/stock"

    answer, refused = _answer(app, signed), _answer(app, bearer)

    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"in_stock": 3}
    assert refused["statusCode"] == 404


def test_auth_core_signs_tokens_for_the_app_its_environment_names() -> None:
    """Deployed, the app's name reaches the function as TCTF_APP, and the tokens it signs
    name that app's issuer and audience, which its API's JWT authorizer checks."""
    app = build({"TCTF_DOMAIN": "auth_core", "TCTF_TRANSPORT": "memory", "TCTF_APP": "acme"})
    assert app.table is not None
    session = {"PK": "USER#u-1", "SK": "SESSION#s-1", "status": "active"}
    refresh_token = token_item("r-1", expires_at=2**40, user_id="u-1", session_id="s-1")
    try:
        for item in (session, refresh_token):
            asyncio.run(app.table.put(item))
        event = _request("POST", "/auth/sessions/refresh", json.dumps({"refresh_token": "r-1"}))
        response = _answer(app, event)
    finally:
        app.close()

    assert response["statusCode"] == 200, response["body"]
    access_token = json.loads(response["body"])["access_token"]
    key = ECKey.import_key(signing_keys().public_jwks()["keys"][-1])
    claims = jwt.decode(access_token, key).claims
    assert (claims["iss"], claims["aud"]) == ("urn:acme:auth", "urn:acme:api")


def test_each_request_logs_one_access_line_with_the_invocations_keys(app: LambdaApp) -> None:
    root = logging.getLogger("tctf")
    saved = (list(root.handlers), root.level, root.propagate)
    written = io.StringIO()
    configure_logging("INFO", "tctf", stream=written)
    try:
        event = _request("GET", "/items/sku-of-ada-4711")
        event["headers"]["x-correlation-id"] = "lookup-1"
        assert _answer(app, event)["statusCode"] == 200
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]

    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    (access,) = [line for line in lines if line["logger"] == "tctf.access"]
    assert access["message"] == "GET /items/{sku} 200"
    assert access["level"] == "INFO"
    assert (access["method"], access["route"], access["status"]) == ("GET", "/items/{sku}", 200)
    assert access["correlation_id"] == "lookup-1"
    assert access["service"] == app.domain.name
    assert access["duration_ms"] >= 0
    assert access["function_name"] == "tctf-inventory"
    assert access["function_request_id"] == "request-1"
    assert "cold_start" in access
    assert "sku-of-ada-4711" not in written.getvalue()
